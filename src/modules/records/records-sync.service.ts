import type { DbOrTx } from '../../db/schema.ts';
import type { RecordWriter, WriteActor, WriteChange } from './record-writer.ts';
import type { EntityName } from './records.entities.ts';
import type { RecordsRepository } from './records.repository.ts';
import type { ConflictRecord, OrganizationWriteState, StoredRecord } from './records.types.ts';

/**
 * What the sync module needs of records, as a service (DESIGN.md: a module uses another through its
 * service, never its repository; issue 8): the one write path, the organization's sequence counters under
 * its row lock, change listing, the conflict list and the purge. Sync binds it to its own transaction with
 * `on(tx)`, so a push commits its records and its mutation log together. Organization-scoped throughout.
 */
export class RecordsSyncService {
  constructor(
    private readonly repo: RecordsRepository,
    private readonly writer: RecordWriter,
  ) {}

  /** The same service on another handle: a transaction the caller opened (db/transaction.ts). */
  on(db: DbOrTx): RecordsSyncService {
    return new RecordsSyncService(this.repo.on(db), this.writer);
  }

  /** Locks the organization row until the transaction ends (writers take turns; see the repository). */
  lockOrganization(organizationId: string): Promise<OrganizationWriteState | undefined> {
    return this.repo.lockOrganization(organizationId);
  }

  organizationSeqs(organizationId: string): Promise<{ changeSeq: number; purgedSeq: number } | undefined> {
    return this.repo.organizationSeqs(organizationId);
  }

  /** Applies changes through RecordWriter; call with the organization locked (lockOrganization). */
  write(organizationId: string, org: OrganizationWriteState, actor: WriteActor, changes: WriteChange[]) {
    return this.writer.write(this.repo, organizationId, org, actor, changes);
  }

  get(entity: EntityName, organizationId: string, id: string): Promise<StoredRecord | undefined> {
    return this.repo.get(entity, organizationId, id);
  }

  findByIdsIn(entity: EntityName, organizationId: string, ids: string[]): Promise<StoredRecord[]> {
    return this.repo.findByIdsIn(entity, organizationId, ids);
  }

  listChanges(entity: EntityName, organizationId: string, since: number, until: number, excludeDeviceId: string | null, limit: number): Promise<StoredRecord[]> {
    return this.repo.listChanges(entity, organizationId, since, until, excludeDeviceId, limit);
  }

  listConflicts(organizationId: string, filter: { status?: 'open' | 'resolved'; limit: number; offset: number }): Promise<ConflictRecord[]> {
    return this.repo.listConflicts(organizationId, filter);
  }

  getConflict(organizationId: string, id: string): Promise<ConflictRecord | undefined> {
    return this.repo.getConflict(organizationId, id);
  }

  markConflictResolved(organizationId: string, id: string, resolution: string, resolvedBy: string, resolvedAt: string): Promise<void> {
    return this.repo.markConflictResolved(organizationId, id, resolution, resolvedBy, resolvedAt);
  }

  purgeStats(cutoff: string): ReturnType<RecordsRepository['purgeStats']> {
    return this.repo.purgeStats(cutoff);
  }

  purgeTombstones(cutoff: string, horizons: Map<string, number>): Promise<void> {
    return this.repo.purgeTombstones(cutoff, horizons);
  }
}
