import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { SyncEvents } from '../sync/sync.events.ts';
import { RecordWriter } from './record-writer.ts';
import { RecordsRepository } from './records.repository.ts';
import { recordsRoutes } from './records.routes.ts';
import { RecordsService } from './records.service.ts';

export interface RecordsModule extends ModuleParts {
  readonly records: RecordsService;
  /** Shared with the sync module until the records ↔ sync edge is cut (issue 8). */
  readonly repository: RecordsRepository;
  readonly writer: RecordWriter;
  readonly events: SyncEvents;
}

export function createRecordsModule(core: Core, deps: { contextOf: (request: FastifyRequest) => Promise<OrgContext> }): RecordsModule {
  const events = new SyncEvents();
  const repository = new RecordsRepository(core.db, core.dialect);
  const writer = new RecordWriter(core.clock);
  const records = new RecordsService(repository, writer, events);
  return {
    records,
    repository,
    writer,
    events,
    routes: [recordsRoutes({ records, contextOf: deps.contextOf })],
    tasks: [],
    // Open event streams would hold http.close() until clients hang up.
    beforeClose: () => events.closeAll(),
  };
}
