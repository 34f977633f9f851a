import type { Clock } from '../../clock.ts';
import type { DbOrTx } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import type { DevicesService } from '../devices/devices.service.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { WriteChange, WriteStatus } from '../records/record-writer.ts';
import { ENTITY_NAMES, parseRecordData, RECORD_ID_SCHEMA, type EntityName, type RecordData } from '../records/records.entities.ts';
import type { RecordsSyncService } from '../records/records-sync.service.ts';
import type { ConflictRecord, StoredRecord } from '../records/records.types.ts';
import { decodeCursor, decodeCursorParts, encodeCursor } from './sync.cursor.ts';
import type { SyncEvents } from './sync.events.ts';
import type { DailyMetrics, SyncRepository } from './sync.repository.ts';
import { clockProblem, type VectorClock } from '../records/vector-clock.ts';

export interface SyncLimits {
  /** Most changes in one push (over → 413 with the limit). */
  maxBatch: number;
  /** Largest push body in bytes (over → 413 with the limit); enforced by the route. */
  maxPayloadBytes: number;
  /** Largest page a pull returns. */
  maxPullLimit: number;
  /** Days a tombstone is kept before the daily cleanup purges it. */
  tombstoneDays: number;
  /** Days the mutation and request logs are kept. */
  logDays: number;
}

export interface PushChange {
  mutation_id: number;
  entity: string;
  op: string;
  id: string;
  vector_clock: unknown;
  data?: unknown;
}

export interface PushResult {
  mutationId: number;
  entity: EntityName;
  id: string;
  status: WriteStatus;
  replayed: boolean;
  record?: StoredRecord;
  conflictId?: string | null;
  reason?: string | null;
}

export interface PullResult {
  changes: StoredRecord[];
  cursor: string;
  hasMore: boolean;
}

export interface CleanupReport {
  dryRun: boolean;
  tombstoneCutoff: string;
  logCutoff: string;
  tombstones: Record<EntityName, number>;
  /** Live comments (or younger tombstones) of purged tasks, purged with them. */
  commentsOfPurgedTasks: number;
  /** Resolved conflicts of purged records. */
  conflicts: number;
  mutations: number;
  logs: number;
}

const DAY_MS = 24 * 3600 * 1000;

/** One stored push or pull: how many changes it carried and how many conflicts it raised. */
export type SyncActivityObserver = (activity: { kind: 'push' | 'pull'; changes: number; conflicts: number }) => void;

export class SyncService {
  constructor(
    private readonly db: DbOrTx,
    private readonly repo: SyncRepository,
    private readonly records: RecordsSyncService,
    private readonly devices: DevicesService,
    private readonly events: SyncEvents,
    private readonly clock: Clock,
    readonly limits: SyncLimits,
    /** Told of every push and pull once it is stored (metrics, issue 12). */
    private readonly observe?: SyncActivityObserver,
  ) {}

  /** One transaction with the sync repository and the records service bound to it. */
  private transaction<T>(fn: (tx: { sync: SyncRepository; records: RecordsSyncService }) => Promise<T>): Promise<T> {
    return inTransaction(this.db, (db) => fn({ sync: this.repo.on(db), records: this.records.on(db) }));
  }

  /**
   * Applies a device's batch in one transaction (docs/sync-protocol.md "Push"). Mutation ids at or below
   * the device's last applied id are replays: they change nothing and answer the stored outcome.
   */
  async push(ctx: OrgContext, deviceId: string | undefined, changes: PushChange[], lastPullCursor?: string): Promise<{ results: PushResult[]; cursor: string }> {
    if (changes.length > this.limits.maxBatch) {
      throw new AppError('payload_too_large', `a push carries at most ${this.limits.maxBatch} changes`, { limit: this.limits.maxBatch });
    }
    const parsed = changes.map((c, i) => this.parseChange(c, i));
    for (let i = 1; i < parsed.length; i++) {
      if (parsed[i]!.mutationId <= parsed[i - 1]!.mutationId) throw new AppError('invalid_request', `changes[${i}].mutation_id must be greater than the one before it`);
    }
    const device = await this.devices.requireActive(ctx.userId, deviceId);
    const pulledUpTo = lastPullCursor === undefined ? undefined : decodeCursor(ctx.organizationId, lastPullCursor);
    const now = this.clock.now().toISOString();

    const outcome = await this.transaction(async ({ sync, records }) => {
      const seqs = await records.lockOrganization(ctx.organizationId);
      if (!seqs) throw new AppError('not_found', 'organization not found');
      // A device that has not pulled since before the newest purged tombstone may be editing records that
      // were deleted and purged meanwhile; applying its upserts would resurrect them as new records.
      if (pulledUpTo !== undefined && pulledUpTo < seqs.purgedSeq) {
        throw new AppError('resync_required', 'your last pull is older than the tombstone horizon: pull again without since, drop changes to records it no longer returns, then push', {
          horizon_days: this.limits.tombstoneDays,
        });
      }
      const last = await sync.lastMutationId(device.id, ctx.organizationId);
      const replays = parsed.filter((c) => c.mutationId <= last);
      const fresh = parsed.filter((c) => c.mutationId > last);
      const stored = new Map((await sync.findMutations(ctx.organizationId, device.id, replays.map((c) => c.mutationId))).map((m) => [m.mutationId, m]));
      const write = await records.write(ctx.organizationId, seqs, { userId: ctx.userId, role: ctx.role, deviceId: device.id }, fresh.map((c) => c.change));
      // Only outcomes other than "applied" are logged: a replayed id without a log row (all ids at or
      // below last_mutation_id were processed) answers "applied", which keeps big pushes to one row each.
      await sync.insertMutations(
        fresh
          .map((c, i) => ({
            deviceId: device.id,
            mutationId: c.mutationId,
            organizationId: ctx.organizationId,
            entity: c.change.entity,
            entityId: c.change.id,
            status: write.outcomes[i]!.status,
            conflictId: write.outcomes[i]!.conflictId ?? null,
            reason: write.outcomes[i]!.reason ?? null,
            createdAt: now,
          }))
          .filter((m) => m.status !== 'applied'),
      );
      // Mutation ids were checked to ascend, so the newest applied id is the last fresh one (no spread of
      // up to STORMVAULT_SYNC_MAX_BATCH arguments into Math.max).
      await sync.markDevice(device.id, ctx.organizationId, fresh.length > 0 ? fresh[fresh.length - 1]!.mutationId : last, now);
      const conflicts = write.outcomes.filter((o) => o.status === 'conflict').length;
      await sync.logRequest({ organizationId: ctx.organizationId, deviceId: device.id, kind: 'push', changes: fresh.length, conflicts, at: now });
      const freshResults = new Map(fresh.map((c, i) => [c.mutationId, write.outcomes[i]!]));
      return { freshResults, stored, changeSeq: write.changeSeq, wrote: write.written.length > 0, changes: fresh.length, conflicts };
    });

    // Replays report the stored status with the record as it is now, so a client whose answer was lost
    // can still adopt the server's version.
    const replayIds: Record<EntityName, string[]> = { project: [], task: [], comment: [] };
    for (const c of parsed) if (!outcome.freshResults.has(c.mutationId)) replayIds[c.change.entity].push(c.change.id);
    const current = new Map<string, StoredRecord>();
    for (const entity of ENTITY_NAMES) {
      if (replayIds[entity].length === 0) continue;
      for (const r of await this.records.findByIdsIn(entity, ctx.organizationId, replayIds[entity])) current.set(`${entity}:${r.id}`, r);
    }
    const results: PushResult[] = parsed.map((c) => {
      const fresh = outcome.freshResults.get(c.mutationId);
      if (fresh) {
        return { mutationId: c.mutationId, entity: c.change.entity, id: c.change.id, status: fresh.status, replayed: false, record: fresh.record, conflictId: fresh.conflictId, reason: fresh.reason };
      }
      const stored = outcome.stored.get(c.mutationId);
      return {
        mutationId: c.mutationId,
        entity: c.change.entity,
        id: c.change.id,
        status: (stored?.status ?? 'applied') as WriteStatus,
        replayed: true,
        record: current.get(`${c.change.entity}:${c.change.id}`),
        conflictId: stored?.conflictId ?? null,
        reason: stored?.reason ?? null,
      };
    });
    this.observe?.({ kind: 'push', changes: outcome.changes, conflicts: outcome.conflicts });
    if (outcome.wrote) this.events.publish({ organizationId: ctx.organizationId, seq: outcome.changeSeq, originDeviceId: device.id });
    return { results, cursor: encodeCursor(ctx.organizationId, outcome.changeSeq) };
  }

  private parseChange(c: PushChange, i: number): { mutationId: number; change: WriteChange } {
    const where = `changes[${i}]`;
    if (!Number.isSafeInteger(c.mutation_id) || c.mutation_id < 1) throw new AppError('invalid_request', `${where}.mutation_id must be a whole number >= 1`);
    if (!ENTITY_NAMES.includes(c.entity as EntityName)) throw new AppError('invalid_request', `${where}.entity must be one of ${ENTITY_NAMES.join(', ')}`);
    if (c.op !== 'upsert' && c.op !== 'delete') throw new AppError('invalid_request', `${where}.op must be upsert or delete`);
    if (!RECORD_ID_SCHEMA.safeParse(c.id).success) throw new AppError('invalid_request', `${where}.id must be 1-64 letters, digits, "_" or "-" (a UUID)`);
    const problem = clockProblem(c.vector_clock);
    if (problem) throw new AppError('invalid_request', `${where}.vector_clock ${problem}`);
    const entity = c.entity as EntityName;
    let data: RecordData = {};
    if (c.op === 'upsert') {
      const result = parseRecordData(entity, c.data);
      if ('problem' in result) throw new AppError('invalid_request', `${where}: ${result.problem}`);
      data = result.data;
    }
    return { mutationId: c.mutation_id, change: { entity, id: c.id, op: c.op, clock: c.vector_clock as VectorClock, data } };
  }

  /** Changes after the cursor, excluding the device's own versions (docs/sync-protocol.md "Pull"). */
  async pull(ctx: OrgContext, deviceId: string | undefined, since: string | undefined, limit: number | undefined): Promise<PullResult> {
    const device = await this.devices.requireActive(ctx.userId, deviceId);
    const pageSize = limit ?? this.limits.maxPullLimit;
    // Out of range is a 400 naming the range, never silently capped or defaulted (issue 12).
    if (!Number.isSafeInteger(pageSize) || pageSize < 1 || pageSize > this.limits.maxPullLimit) {
      throw new AppError('invalid_request', `limit must be a whole number from 1 to ${this.limits.maxPullLimit}`, { max_limit: this.limits.maxPullLimit });
    }
    const seqs = await this.records.organizationSeqs(ctx.organizationId);
    if (!seqs) throw new AppError('not_found', 'organization not found');
    // No `since`: a full pull, which returns every live record and tombstone within the horizon — this
    // device's own versions included, on every page (the 410 recovery replaces local data with it).
    const cursor = since ? decodeCursorParts(ctx.organizationId, since) : { seq: 0, full: true };
    const from = cursor.seq;
    if (from > seqs.changeSeq) throw new AppError('invalid_request', 'since is ahead of the server: not a cursor this server handed out');
    // Any given cursor below the purge horizon is refused, seq 0 included, exactly as a push naming it is:
    // the device may hold records (its own pushes too) whose tombstones are gone. The pages of a full pull
    // are exempt: they walk up from 0 through purged ranges, and the device deletes whatever the full pull
    // does not return anyway.
    if (since && !cursor.full && from < seqs.purgedSeq) {
      throw new AppError('resync_required', 'the cursor is older than the tombstone horizon: pull again without since and replace local data', {
        horizon_days: this.limits.tombstoneDays,
      });
    }
    // Writers commit in sequence order (organization row lock), so everything up to the sequence number
    // read above is committed: reading up to it can never skip a change that commits later.
    const until = seqs.changeSeq;
    const exclude = cursor.full ? null : device.id;
    const pages = await Promise.all(ENTITY_NAMES.map((e) => this.records.listChanges(e, ctx.organizationId, from, until, exclude, pageSize + 1)));
    const all = pages.flat().sort((a, b) => a.seq - b.seq);
    const hasMore = all.length > pageSize;
    const changes = all.slice(0, pageSize);
    const next = hasMore ? encodeCursor(ctx.organizationId, changes[changes.length - 1]!.seq, { full: cursor.full }) : encodeCursor(ctx.organizationId, until);
    await this.repo.logRequest({ organizationId: ctx.organizationId, deviceId: device.id, kind: 'pull', changes: changes.length, conflicts: 0, at: this.clock.now().toISOString() });
    this.observe?.({ kind: 'pull', changes: changes.length, conflicts: 0 });
    return { changes, cursor: next, hasMore };
  }

  /** The current cursor (for event streams). */
  async currentCursor(ctx: OrgContext): Promise<string> {
    const seqs = await this.records.organizationSeqs(ctx.organizationId);
    return encodeCursor(ctx.organizationId, seqs?.changeSeq ?? 0);
  }

  listConflicts(ctx: OrgContext, filter: { status?: 'open' | 'resolved'; limit: number; offset: number }): Promise<ConflictRecord[]> {
    return this.records.listConflicts(ctx.organizationId, filter);
  }

  /**
   * Resolves a conflict by writing a new version whose clock dominates both sides (and the current one),
   * so it syncs to every device like any other change. local = the device's side, remote = keep the
   * server's current version, custom = the given data.
   */
  async resolve(ctx: OrgContext, conflictId: string, strategy: 'local' | 'remote' | 'custom', customData: unknown): Promise<{ conflict: ConflictRecord; record: StoredRecord | undefined }> {
    const existing = await this.records.getConflict(ctx.organizationId, conflictId);
    if (!existing) throw new AppError('not_found', 'conflict not found');
    let data: RecordData = {};
    // Ignored, it would look applied: `data` goes with `custom` alone.
    if (strategy !== 'custom' && customData !== undefined) throw new AppError('invalid_request', `data is only for strategy custom, not ${strategy}`);
    if (strategy === 'custom') {
      if (customData === undefined || customData === null) throw new AppError('invalid_request', 'strategy custom needs data');
      const parsed = parseRecordData(existing.entity, customData);
      if ('problem' in parsed) throw new AppError('invalid_request', parsed.problem);
      data = parsed.data;
    }
    const now = this.clock.now().toISOString();
    const result = await this.transaction(async ({ records }) => {
      const seqs = await records.lockOrganization(ctx.organizationId);
      const conflict = await records.getConflict(ctx.organizationId, conflictId);
      if (!conflict || !seqs) throw new AppError('not_found', 'conflict not found');
      if (conflict.status !== 'open') throw new AppError('conflict', 'this conflict is already resolved');
      const cur = await records.get(conflict.entity, ctx.organizationId, conflict.entityId);
      let op: 'upsert' | 'delete';
      if (strategy === 'local') {
        op = conflict.op;
        data = conflict.localData ?? {};
      } else if (strategy === 'remote') {
        op = cur?.deletedAt ? 'delete' : 'upsert';
      } else {
        op = 'upsert';
      }
      const change: WriteChange = {
        entity: conflict.entity,
        id: conflict.entityId,
        op,
        clock: 'server',
        dominate: [conflict.localClock, conflict.remoteClock],
        data,
        skipTransitionCheck: true,
        historyOp: 'resolve',
      };
      const write = cur ? await records.write(ctx.organizationId, seqs, { userId: ctx.userId, role: ctx.role, deviceId: null }, [change]) : undefined;
      const outcome = write?.outcomes[0];
      if (outcome?.status === 'rejected') throw new AppError(outcome.forbidden ? 'forbidden' : 'invalid_request', outcome.reason ?? 'the resolution was rejected');
      await records.markConflictResolved(ctx.organizationId, conflict.id, strategy, ctx.userId, now);
      return { record: outcome?.record, changeSeq: write?.changeSeq };
    });
    if (result.changeSeq !== undefined) this.events.publish({ organizationId: ctx.organizationId, seq: result.changeSeq, originDeviceId: null });
    return { conflict: (await this.records.getConflict(ctx.organizationId, conflictId))!, record: result.record };
  }

  /**
   * Purges tombstones older than the tombstone horizon (raising each organization's purge horizon, so
   * older cursors get 410) and mutation/request logs older than the log horizon. The CLI
   * (`stormvault sync cleanup`) and the daily task both call this.
   */
  async cleanup(options: { dryRun: boolean }): Promise<CleanupReport> {
    const now = this.clock.now().getTime();
    const tombstoneCutoff = new Date(now - this.limits.tombstoneDays * DAY_MS).toISOString();
    const logCutoff = new Date(now - this.limits.logDays * DAY_MS).toISOString();
    return this.transaction(async ({ sync, records }) => {
      const stats = await records.purgeStats(tombstoneCutoff);
      const tombstones: Record<EntityName, number> = { project: 0, task: 0, comment: 0 };
      const horizons = new Map<string, number>();
      const raise = (organizationId: string, seq: number) => horizons.set(organizationId, Math.max(horizons.get(organizationId) ?? 0, seq));
      for (const s of stats.tombstones) {
        tombstones[s.entity] += s.count;
        raise(s.organizationId, s.maxSeq);
      }
      // Comments purged with their task need no horizon of their own: every device that holds one also
      // holds (or held) the task's tombstone, and drops a deleted task's comments with it (docs/sync-protocol.md).
      const commentsOfPurgedTasks = stats.commentsOfPurgedTasks.reduce((n, s) => n + s.count, 0);
      const logs = await sync.countOlderThan(logCutoff);
      if (!options.dryRun) {
        await records.purgeTombstones(tombstoneCutoff, horizons);
        await sync.purgeOlderThan(logCutoff);
      }
      return { dryRun: options.dryRun, tombstoneCutoff, logCutoff, tombstones, commentsOfPurgedTasks, conflicts: stats.conflicts, mutations: logs.mutations, logs: logs.logs };
    });
  }

  /** Aggregates one UTC day (default: yesterday) of the request log into sync_metrics; idempotent. */
  async recordDailyMetrics(day?: string): Promise<DailyMetrics[]> {
    const target = day ?? new Date(this.clock.now().getTime() - DAY_MS).toISOString().slice(0, 10);
    if (!/^\d{4}-\d{2}-\d{2}$/.test(target) || Number.isNaN(Date.parse(target))) throw new AppError('invalid_request', 'day must be YYYY-MM-DD');
    const from = `${target}T00:00:00.000Z`;
    const to = new Date(Date.parse(from) + DAY_MS).toISOString();
    const rows = (await this.repo.aggregate(from, to)).map((r) => ({ ...r, day: target }));
    await this.repo.upsertMetrics(rows, this.clock.now().toISOString());
    return rows;
  }

  listMetrics(ctx: OrgContext, limit: number): Promise<DailyMetrics[]> {
    return this.repo.listMetrics(ctx.organizationId, limit);
  }
}
