import { sql } from 'kysely';
import type { DialectName } from '../../db/database.ts';
import type { DbOrTx, SyncMutationsTable } from '../../db/schema.ts';

export interface StoredMutation {
  mutationId: number;
  organizationId: string;
  entity: string;
  entityId: string;
  status: string;
  conflictId: string | null;
  reason: string | null;
}

export interface DailyMetrics {
  organizationId: string;
  day: string;
  pushes: number;
  pulls: number;
  changesPushed: number;
  changesPulled: number;
  conflicts: number;
}

/** The per-device mutation log (idempotent pushes), the sync request log and daily metrics. */
export class SyncRepository {
  constructor(
    private readonly db: DbOrTx,
    private readonly dialect: DialectName,
  ) {}

  /** The same repository on another handle, e.g. a transaction the service opened (db/transaction.ts). */
  on(db: DbOrTx): SyncRepository {
    return new SyncRepository(db, this.dialect);
  }

  /** The device's last processed mutation id in this organization (0 before its first push there). */
  async lastMutationId(deviceId: string, organizationId: string): Promise<number> {
    const row = await this.db
      .selectFrom('sync_device_state')
      .select('last_mutation_id')
      .where('device_id', '=', deviceId)
      .where('organization_id', '=', organizationId)
      .executeTakeFirst();
    return row ? Number(row.last_mutation_id) : 0;
  }

  /**
   * Records a processed push: the (device, organization) counter, and on the device row when it was last
   * seen and the highest id across its organizations (shown in the device list; replays never read it).
   */
  async markDevice(deviceId: string, organizationId: string, lastMutationId: number, seenAt: string): Promise<void> {
    await this.db
      .insertInto('sync_device_state')
      .values({ device_id: deviceId, organization_id: organizationId, last_mutation_id: lastMutationId, updated_at: seenAt })
      .onConflict((oc) => oc.columns(['device_id', 'organization_id']).doUpdateSet({ last_mutation_id: lastMutationId, updated_at: seenAt }))
      .execute();
    await this.db
      .updateTable('devices')
      .set({ last_mutation_id: sql<number>`case when last_mutation_id < ${lastMutationId} then ${lastMutationId} else last_mutation_id end`, last_seen_at: seenAt })
      .where('id', '=', deviceId)
      .execute();
  }

  /** Stored outcomes of one device's mutations in one organization (a device may push to several). */
  async findMutations(organizationId: string, deviceId: string, mutationIds: number[]): Promise<StoredMutation[]> {
    if (mutationIds.length === 0) return [];
    const rows = await this.db
      .selectFrom('sync_mutations')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('device_id', '=', deviceId)
      .where('mutation_id', 'in', mutationIds)
      .execute();
    return rows.map((r) => ({
      mutationId: Number(r.mutation_id),
      organizationId: r.organization_id,
      entity: r.entity,
      entityId: r.entity_id,
      status: r.status,
      conflictId: r.conflict_id,
      reason: r.reason,
    }));
  }

  async insertMutations(mutations: Array<StoredMutation & { deviceId: string; createdAt: string }>): Promise<void> {
    const rows = mutations.map(
      (m): SyncMutationsTable => ({
        device_id: m.deviceId,
        mutation_id: m.mutationId,
        organization_id: m.organizationId,
        entity: m.entity,
        entity_id: m.entityId,
        status: m.status,
        conflict_id: m.conflictId,
        reason: m.reason,
        created_at: m.createdAt,
      }),
    );
    for (let i = 0; i < rows.length; i += 1000) {
      await this.db.insertInto('sync_mutations').values(rows.slice(i, i + 1000)).execute();
    }
  }

  async logRequest(row: { organizationId: string; deviceId: string | null; kind: 'push' | 'pull'; changes: number; conflicts: number; at: string }): Promise<void> {
    await this.db
      .insertInto('sync_log')
      .values({ organization_id: row.organizationId, device_id: row.deviceId, kind: row.kind, changes: row.changes, conflicts: row.conflicts, created_at: row.at })
      .execute();
  }

  async countOlderThan(cutoff: string): Promise<{ mutations: number; logs: number }> {
    const m = await this.db.selectFrom('sync_mutations').select((eb) => eb.fn.countAll<number>().as('n')).where('created_at', '<', cutoff).executeTakeFirstOrThrow();
    const l = await this.db.selectFrom('sync_log').select((eb) => eb.fn.countAll<number>().as('n')).where('created_at', '<', cutoff).executeTakeFirstOrThrow();
    return { mutations: Number(m.n), logs: Number(l.n) };
  }

  /**
   * Deletes mutation-log and request-log rows older than `cutoff`. A retry of a purged mutation still
   * answers as a replay (its id is below the device's last_mutation_id), just without the stored status.
   */
  async purgeOlderThan(cutoff: string): Promise<void> {
    await this.db.deleteFrom('sync_mutations').where('created_at', '<', cutoff).execute();
    await this.db.deleteFrom('sync_log').where('created_at', '<', cutoff).execute();
  }

  /** Per organization, the pushes, pulls and conflicts logged in [from, to). */
  async aggregate(from: string, to: string): Promise<Omit<DailyMetrics, 'day'>[]> {
    const rows = await this.db
      .selectFrom('sync_log')
      .select([
        'organization_id',
        sql<number>`sum(case when kind = 'push' then 1 else 0 end)`.as('pushes'),
        sql<number>`sum(case when kind = 'pull' then 1 else 0 end)`.as('pulls'),
        sql<number>`sum(case when kind = 'push' then changes else 0 end)`.as('changes_pushed'),
        sql<number>`sum(case when kind = 'pull' then changes else 0 end)`.as('changes_pulled'),
        sql<number>`sum(conflicts)`.as('conflicts'),
      ])
      .where('created_at', '>=', from)
      .where('created_at', '<', to)
      .groupBy('organization_id')
      .execute();
    return rows.map((r) => ({
      organizationId: r.organization_id,
      pushes: Number(r.pushes),
      pulls: Number(r.pulls),
      changesPushed: Number(r.changes_pushed),
      changesPulled: Number(r.changes_pulled),
      conflicts: Number(r.conflicts),
    }));
  }

  async upsertMetrics(rows: DailyMetrics[], recordedAt: string): Promise<void> {
    if (rows.length === 0) return;
    await this.db
      .insertInto('sync_metrics')
      .values(
        rows.map((m) => ({
          organization_id: m.organizationId,
          day: m.day,
          pushes: m.pushes,
          pulls: m.pulls,
          changes_pushed: m.changesPushed,
          changes_pulled: m.changesPulled,
          conflicts: m.conflicts,
          recorded_at: recordedAt,
        })),
      )
      .onConflict((oc) =>
        oc.columns(['organization_id', 'day']).doUpdateSet((eb) => ({
          pushes: eb.ref('excluded.pushes'),
          pulls: eb.ref('excluded.pulls'),
          changes_pushed: eb.ref('excluded.changes_pushed'),
          changes_pulled: eb.ref('excluded.changes_pulled'),
          conflicts: eb.ref('excluded.conflicts'),
          recorded_at: eb.ref('excluded.recorded_at'),
        })),
      )
      .execute();
  }

  async listMetrics(organizationId: string, limit: number): Promise<DailyMetrics[]> {
    const rows = await this.db.selectFrom('sync_metrics').selectAll().where('organization_id', '=', organizationId).orderBy('day', 'desc').limit(limit).execute();
    return rows.map((r) => ({
      organizationId: r.organization_id,
      day: r.day,
      pushes: r.pushes,
      pulls: r.pulls,
      changesPushed: r.changes_pushed,
      changesPulled: r.changes_pulled,
      conflicts: r.conflicts,
    }));
  }

  get dialectName(): DialectName {
    return this.dialect;
  }
}
