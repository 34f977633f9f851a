import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import {
  clockLessOrEqual,
  compareClocks,
  incrementClock,
  mergeClocks,
  normalizeClock,
  SERVER_CLOCK_KEY,
  type VectorClock,
} from './vector-clock.ts';
import { ENTITY_SPECS, missingRequired, recordBytes, recordChecksum, sameValue, transitionProblem, type EntityName, type RecordData } from './records.entities.ts';
import type { RecordsRepository } from './records.repository.ts';
import type { ConflictRecord, OrganizationWriteState, StoredRecord } from './records.types.ts';

/** One change to write. Device changes carry the device's clock; server changes (REST, resolutions) get one here. */
export interface WriteChange {
  entity: EntityName;
  id: string;
  op: 'upsert' | 'delete';
  /** The device's clock, or 'server': the stored clock with the server's entry advanced (always AFTER). */
  clock: VectorClock | 'server';
  /** Server changes that must also dominate these clocks (a conflict resolution dominates both sides). */
  dominate?: VectorClock[];
  /** Validated (partial) data: the fields this change sets. */
  data: RecordData;
  /** REST If-Match: the stored version must equal this, or 412. */
  expectedVersion?: number;
  /** REST create: an existing id is a 409. */
  mustCreate?: boolean;
  /** REST update/delete: a missing or deleted record is a 404. */
  mustExist?: boolean;
  /** Resolutions write the chosen data as is: status transitions are not re-checked. */
  skipTransitionCheck?: boolean;
  historyOp?: string;
}

export type WriteStatus = 'applied' | 'merged' | 'stale' | 'conflict' | 'rejected';

export interface WriteOutcome {
  status: WriteStatus;
  /** The record as stored right after this change (undefined when it does not exist). */
  record?: StoredRecord;
  conflictId?: string;
  /** Why a change was rejected or ignored. */
  reason?: string;
  /** A rejection for the actor's role (REST and resolutions answer 403 rather than 400). */
  forbidden?: boolean;
}

export interface WriteActor {
  userId: string;
  /** The actor's role in the organization: archiving projects is for admins, however it arrives. */
  role: 'admin' | 'member';
  /** The pushing device; null for REST and other server-made writes. */
  deviceId: string | null;
}

const key = (entity: EntityName, id: string) => `${entity}:${id}`;

/**
 * The single write path for records: sync pushes, REST edits and conflict resolutions all come here, so
 * clocks, versions, checksums, sequence numbers and task history follow one set of rules
 * (docs/sync-protocol.md). Call inside a transaction whose organization row is already locked
 * (RecordsRepository.lockOrganization); everything is written with multi-row statements at the end.
 */
export class RecordWriter {
  constructor(private readonly clock: Clock) {}

  async write(repo: RecordsRepository, organizationId: string, org: OrganizationWriteState, actor: WriteActor, changes: WriteChange[]): Promise<{ outcomes: WriteOutcome[]; changeSeq: number; written: StoredRecord[] }> {
    const now = this.clock.now().toISOString();
    const state = await this.load(repo, organizationId, changes);
    // Bytes each record held before the batch, for the storage quota (only records the batch writes matter).
    const liveBytes = (r: StoredRecord | undefined) => (r && r.deletedAt === null ? recordBytes(r.entity, r.data) : 0);
    const bytesBefore = new Map([...state].map(([k, r]) => [k, liveBytes(r)]));
    let memberIds: Set<string> | undefined;
    if (changes.some((c) => c.data.assignee_id !== undefined && c.data.assignee_id !== null)) {
      memberIds = new Set(await repo.listMemberIds(organizationId));
    }
    const dirty = new Map<string, StoredRecord>();
    const history: Parameters<RecordsRepository['insertHistory']>[0] = [];
    const conflicts: ConflictRecord[] = [];
    const outcomes: WriteOutcome[] = [];

    const ctx = { organizationId, actor, now, state, memberIds };
    for (const change of changes) {
      const cur = state.get(key(change.entity, change.id));
      const result = this.decide(ctx, change, cur);
      if (result.status === 'conflict') {
        const conflict = result.conflict!;
        conflicts.push(conflict);
        outcomes.push({ status: 'conflict', record: cur, conflictId: conflict.id });
        continue;
      }
      if (result.next) {
        const k = key(change.entity, change.id);
        state.set(k, result.next);
        dirty.delete(k); // re-insert so sequence numbers follow the order of last writes
        dirty.set(k, result.next);
        if (change.entity === 'task') {
          history.push({
            organizationId,
            taskId: change.id,
            userId: actor.userId,
            deviceId: actor.deviceId,
            op: change.historyOp ?? result.historyOp!,
            changes: result.diff ?? {},
            version: result.next.version,
            createdAt: now,
          });
        }
      }
      outcomes.push({ status: result.status, record: result.next ?? cur, reason: result.reason, forbidden: result.forbidden });
    }

    let seq = org.changeSeq;
    const written = [...dirty.values()];
    for (const record of written) record.seq = ++seq;
    if (written.length > 0) {
      // The organization storage quota (issue 12): a batch that makes the live records bigger than the
      // quota is refused whole; one that shrinks or keeps them is always allowed, even over quota.
      let delta = 0;
      for (const [k, record] of dirty) delta += liveBytes(record) - (bytesBefore.get(k) ?? 0);
      const used = org.storageUsedBytes + delta;
      if (delta > 0 && org.storageQuotaBytes !== null && used > org.storageQuotaBytes) {
        throw new AppError('quota_exceeded', `this would store ${used} bytes of records; the organization's quota is ${org.storageQuotaBytes} bytes`, {
          quota_bytes: org.storageQuotaBytes,
          used_bytes: org.storageUsedBytes,
          needed_bytes: delta,
        });
      }
      await repo.upsertMany(written);
      await repo.setOrganizationCounters(organizationId, seq, Math.max(0, used));
    }
    if (history.length > 0) await repo.insertHistory(history);
    if (conflicts.length > 0) await repo.insertConflicts(conflicts);
    // Outcomes hold snapshots: later changes in the batch must not alter what an earlier one reports.
    return { outcomes: outcomes.map((o) => (o.record ? { ...o, record: { ...o.record } } : o)), changeSeq: seq, written };
  }

  /**
   * Loads every record the batch touches or references. Ids are unique across organizations, so an id of
   * another organization refuses the batch with the 404 a REST read of it answers ("not found", nothing
   * said about where it lives: issue 12, no probing by 403).
   */
  private async load(repo: RecordsRepository, organizationId: string, changes: WriteChange[]): Promise<Map<string, StoredRecord>> {
    const ids: Record<EntityName, string[]> = { project: [], task: [], comment: [] };
    for (const c of changes) {
      ids[c.entity].push(c.id);
      if (typeof c.data.project_id === 'string') ids.project.push(c.data.project_id);
      if (typeof c.data.task_id === 'string') ids.task.push(c.data.task_id);
      if (typeof c.data.parent_id === 'string') ids.comment.push(c.data.parent_id);
    }
    const state = new Map<string, StoredRecord>();
    for (const entity of ['project', 'task', 'comment'] as const) {
      if (ids[entity].length === 0) continue;
      for (const record of await repo.findByIds(entity, ids[entity])) {
        if (record.organizationId !== organizationId) {
          throw new AppError('not_found', `${entity} ${record.id} not found`);
        }
        state.set(key(entity, record.id), record);
      }
    }
    return state;
  }

  private decide(
    ctx: { organizationId: string; actor: WriteActor; now: string; state: Map<string, StoredRecord>; memberIds?: Set<string> },
    change: WriteChange,
    cur: StoredRecord | undefined,
  ): { status: WriteStatus; next?: StoredRecord; diff?: Record<string, { old: unknown; new: unknown }>; historyOp?: string; reason?: string; forbidden?: boolean; conflict?: ConflictRecord } {
    const { entity } = change;
    if (change.mustCreate && cur) throw new AppError('already_exists', `${entity} ${change.id} already exists`);
    if (change.mustExist && (!cur || cur.deletedAt)) throw new AppError('not_found', `${entity} not found`);
    if (change.expectedVersion !== undefined && cur && cur.version !== change.expectedVersion) {
      throw new AppError('precondition_failed', `version is ${cur.version}, not ${change.expectedVersion} (If-Match)`, { version: cur.version });
    }
    const serverMade = change.clock === 'server';
    const clock: VectorClock =
      change.clock === 'server' ? incrementClock(mergeClocks(cur?.vectorClock ?? {}, ...(change.dominate ?? [])), SERVER_CLOCK_KEY) : normalizeClock(change.clock);
    const origin = serverMade ? null : ctx.actor.deviceId;

    if (!cur) {
      if (change.op === 'delete') return { status: 'rejected', reason: `${entity} ${change.id} does not exist` };
      const data: RecordData = { ...ENTITY_SPECS[entity].defaults, ...change.data };
      const missing = missingRequired(entity, data);
      if (missing.length > 0) return { status: 'rejected', reason: `a new ${entity} needs ${missing.join(', ')}` };
      const denied = this.roleProblem(ctx, change, undefined, data);
      if (denied) return { status: 'rejected', reason: denied, forbidden: true };
      const problem = this.ruleProblem(ctx, change, undefined, data);
      if (problem) return { status: 'rejected', reason: problem };
      // No field clocks for values written at creation: anyone editing the record has seen its creation,
      // so a missing entry (= the empty clock) is always "seen" — and creates stay cheap to store.
      const fieldClocks: Record<string, VectorClock> = {};
      const diff: Record<string, { old: unknown; new: unknown }> = {};
      for (const field of ENTITY_SPECS[entity].fields) diff[field] = { old: null, new: data[field] ?? null };
      const next: StoredRecord = {
        entity,
        id: change.id,
        organizationId: ctx.organizationId,
        data,
        version: 1,
        vectorClock: clock,
        fieldClocks,
        checksum: recordChecksum(entity, data, false),
        seq: 0,
        originDeviceId: origin,
        createdBy: ctx.actor.userId,
        createdAt: ctx.now,
        updatedAt: ctx.now,
        deletedAt: null,
        editedAt: null,
      };
      return { status: 'applied', next, diff, historyOp: 'create' };
    }

    const order = serverMade ? 'after' : compareClocks(clock, cur.vectorClock);
    if (order === 'before' || order === 'equal') {
      return { status: 'stale', reason: `the server already has this or a newer version (clock ${order})` };
    }
    const changed = change.op === 'upsert' ? ENTITY_SPECS[entity].fields.filter((f) => change.data[f] !== undefined && !sameValue(change.data[f], cur.data[f])) : [];
    if (order === 'concurrent') {
      const bothDeletes = change.op === 'delete' && cur.deletedAt !== null;
      const editOnLive = change.op === 'upsert' && cur.deletedAt === null;
      const overlap = editOnLive ? changed.filter((f) => !clockLessOrEqual(cur.fieldClocks[f] ?? {}, clock)) : ['*'];
      if (!bothDeletes && overlap.length > 0) {
        return {
          status: 'conflict',
          conflict: {
            id: randomUUID(),
            organizationId: ctx.organizationId,
            entity,
            entityId: cur.id,
            op: change.op,
            fields: overlap,
            localData: change.op === 'delete' ? null : change.data,
            localClock: clock,
            localDeviceId: ctx.actor.deviceId,
            remoteData: cur.data,
            remoteClock: cur.vectorClock,
            remoteDeleted: cur.deletedAt !== null,
            status: 'open',
            resolution: null,
            resolvedBy: null,
            createdAt: ctx.now,
            resolvedAt: null,
          },
        };
      }
    }
    // AFTER, or CONCURRENT without overlapping fields: write. A merge is not what any device holds, so it
    // gets no origin device and every device (the pusher too) pulls it.
    const merged = order === 'concurrent';
    const denied = this.roleProblem(ctx, change, cur, { ...cur.data, ...pick(change.data, changed) }, changed);
    if (denied) return { status: 'rejected', reason: denied, forbidden: true };
    const problem = change.op === 'upsert' ? this.ruleProblem(ctx, change, cur, { ...cur.data, ...pick(change.data, changed) }, changed) : null;
    if (problem) return { status: 'rejected', reason: problem };
    const data = { ...cur.data, ...pick(change.data, changed) };
    const fieldClocks = { ...cur.fieldClocks };
    const diff: Record<string, { old: unknown; new: unknown }> = {};
    for (const f of changed) {
      fieldClocks[f] = clock;
      diff[f] = { old: cur.data[f] ?? null, new: data[f] ?? null };
    }
    const deletedAt = change.op === 'delete' ? (cur.deletedAt ?? ctx.now) : null;
    const historyOp = change.op === 'delete' ? 'delete' : cur.deletedAt ? 'restore' : merged ? 'merge' : 'update';
    const next: StoredRecord = {
      ...cur,
      data,
      version: cur.version + 1,
      vectorClock: mergeClocks(cur.vectorClock, clock),
      fieldClocks,
      checksum: recordChecksum(entity, data, deletedAt !== null),
      // A restored tombstone regains fields the device may never have held (tombstones carry no data),
      // so like a merge it goes to every device.
      originDeviceId: merged || (cur.deletedAt !== null && change.op === 'upsert') ? null : origin,
      updatedAt: ctx.now,
      deletedAt,
      editedAt: entity === 'comment' && changed.includes('body') ? ctx.now : cur.editedAt,
    };
    return { status: merged ? 'merged' : 'applied', next, diff, historyOp };
  }

  /**
   * Role rules, the same however a change arrives (push, REST, resolution): a project's lifecycle —
   * archive, unarchive, delete, restore — is the admins' call; members create, rename and use projects
   * (issue 12: members could delete a project they could not archive).
   */
  private roleProblem(ctx: { actor: WriteActor }, change: WriteChange, cur: StoredRecord | undefined, data: RecordData, changed?: string[]): string | null {
    if (change.entity !== 'project' || ctx.actor.role === 'admin') return null;
    if (change.op === 'delete') return cur && cur.deletedAt === null ? 'deleting a project needs the admin role' : null;
    if (cur?.deletedAt) return 'restoring a deleted project needs the admin role';
    const touched = changed ? changed.includes('archived') : data.archived !== undefined;
    if (touched && (cur || data.archived === true)) return 'archiving or unarchiving a project needs the admin role';
    return null;
  }

  /** Rules that need the organization's state: references, membership, immutable fields, transitions. */
  private ruleProblem(
    ctx: { organizationId: string; actor: WriteActor; state: Map<string, StoredRecord>; memberIds?: Set<string> },
    change: WriteChange,
    cur: StoredRecord | undefined,
    data: RecordData,
    changed?: string[],
  ): string | null {
    const touched = (f: string) => (changed ? changed.includes(f) : data[f] !== undefined);
    const spec = ENTITY_SPECS[change.entity];
    if (cur) for (const f of spec.immutable) if (touched(f)) return `${change.entity} ${f} cannot change`;
    if (change.entity === 'task') {
      if (touched('project_id') && typeof data.project_id === 'string' && !ctx.state.has(key('project', data.project_id))) return `project ${data.project_id} does not exist`;
      if (touched('assignee_id') && typeof data.assignee_id === 'string' && !ctx.memberIds?.has(data.assignee_id)) return `assignee ${data.assignee_id} is not a member of the organization`;
      if (cur && touched('status') && !change.skipTransitionCheck) return transitionProblem(String(cur.data.status), String(data.status));
    }
    if (change.entity === 'comment' && !cur) {
      if (!ctx.state.has(key('task', String(data.task_id)))) return `task ${data.task_id} does not exist`;
      if (typeof data.parent_id === 'string') {
        const parent = ctx.state.get(key('comment', data.parent_id));
        if (!parent) return `parent comment ${data.parent_id} does not exist`;
        if (parent.data.task_id !== data.task_id) return 'a reply must be on the same task as its parent comment';
      }
    }
    return null;
  }
}

function pick(data: RecordData, fields: string[]): RecordData {
  const out: RecordData = {};
  for (const f of fields) out[f] = data[f];
  return out;
}
