import type { FastifyRequest } from 'fastify';
import type { Core, ModuleParts } from '../../core.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import { RecordWriter } from './record-writer.ts';
import { RecordsSyncService } from './records-sync.service.ts';
import { RecordsRepository } from './records.repository.ts';
import { recordsRoutes } from './records.routes.ts';
import { RecordsService } from './records.service.ts';
import type { RecordChangePublisher } from './records.types.ts';

export interface RecordsModule extends ModuleParts {
  readonly records: RecordsService;
  /** For the sync module, which applies pushes through the same writer (sync → records only). */
  readonly sync: RecordsSyncService;
}

export function createRecordsModule(core: Core, deps: { contextOf: (request: FastifyRequest) => Promise<OrgContext>; publisher: RecordChangePublisher }): RecordsModule {
  const repository = new RecordsRepository(core.db, core.dialect);
  const writer = new RecordWriter(core.clock);
  const records = new RecordsService(core.db, repository, writer, deps.publisher);
  return {
    records,
    sync: new RecordsSyncService(repository, writer),
    routes: [recordsRoutes({ records, contextOf: deps.contextOf })],
    tasks: [],
  };
}
