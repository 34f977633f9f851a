import { CompiledQuery, sql } from 'kysely';
import type { DialectName } from '../../db/database.ts';
import type { DbOrTx, RecTaskHistoryTable, SyncConflictsTable } from '../../db/schema.ts';
import { clockFromJson, type VectorClock } from './vector-clock.ts';
import type { EntityName, RecordData } from './records.entities.ts';
import type { ConflictRecord, OrganizationWriteState, StoredRecord, TaskFilter, TaskHistoryEntry } from './records.types.ts';

type RecordTable = 'rec_projects' | 'rec_tasks' | 'rec_comments';
export const RECORD_TABLES: Record<EntityName, RecordTable> = { project: 'rec_projects', task: 'rec_tasks', comment: 'rec_comments' };

// Rows of the three record tables differ only in their data columns; this file is the one place that
// knows the mapping, so the generic queries below use loosely typed rows.
type AnyRow = Record<string, any>;

const META_COLUMNS = ['id', 'organization_id', 'version', 'vector_clock', 'field_clocks', 'checksum', 'seq', 'origin_device_id', 'created_by', 'created_at', 'updated_at', 'deleted_at'];
const DATA_COLUMNS: Record<EntityName, string[]> = {
  project: ['name', 'archived'],
  task: ['title', 'description', 'status', 'priority', 'due_date', 'assignee_id', 'project_id', 'tags', 'custom_fields'],
  comment: ['task_id', 'parent_id', 'body', 'edited_at'],
};
// Never changed by an upsert of an existing row.
const INSERT_ONLY = new Set(['id', 'organization_id', 'created_at', 'created_by']);
// Keep each multi-row statement well below SQLite's 32766 and PostgreSQL's 65535 bound parameters.
const MAX_PARAMS = 20_000;

function toRow(r: StoredRecord): AnyRow {
  const row: AnyRow = {
    id: r.id,
    organization_id: r.organizationId,
    version: r.version,
    vector_clock: JSON.stringify(r.vectorClock),
    field_clocks: JSON.stringify(r.fieldClocks),
    checksum: r.checksum,
    seq: r.seq,
    origin_device_id: r.originDeviceId,
    created_by: r.createdBy,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    deleted_at: r.deletedAt,
  };
  const d = r.data;
  switch (r.entity) {
    case 'project':
      row.name = d.name;
      row.archived = d.archived ? 1 : 0;
      break;
    case 'task':
      Object.assign(row, {
        title: d.title,
        description: d.description,
        status: d.status,
        priority: d.priority,
        due_date: d.due_date ?? null,
        assignee_id: d.assignee_id ?? null,
        project_id: d.project_id ?? null,
        tags: JSON.stringify(d.tags ?? []),
        custom_fields: JSON.stringify(d.custom_fields ?? {}),
      });
      break;
    case 'comment':
      Object.assign(row, { task_id: d.task_id, parent_id: d.parent_id ?? null, body: d.body, edited_at: r.editedAt });
      break;
  }
  return row;
}

function dataOf(entity: EntityName, row: AnyRow): RecordData {
  switch (entity) {
    case 'project':
      return { name: row.name, archived: row.archived === 1 };
    case 'task':
      return {
        title: row.title,
        description: row.description,
        status: row.status,
        priority: row.priority,
        due_date: row.due_date,
        assignee_id: row.assignee_id,
        project_id: row.project_id,
        tags: JSON.parse(row.tags),
        custom_fields: JSON.parse(row.custom_fields),
      };
    case 'comment':
      return { task_id: row.task_id, parent_id: row.parent_id, body: row.body };
  }
}

function fieldClocksFromJson(text: string): Record<string, VectorClock> {
  const out: Record<string, VectorClock> = Object.create(null);
  for (const [field, clock] of Object.entries(JSON.parse(text) as Record<string, VectorClock>)) out[field] = Object.assign(Object.create(null), clock);
  return out;
}

function fromRow(entity: EntityName, row: AnyRow): StoredRecord {
  return {
    entity,
    id: row.id,
    organizationId: row.organization_id,
    data: dataOf(entity, row),
    version: Number(row.version),
    vectorClock: clockFromJson(row.vector_clock),
    // Pulls do not select field_clocks (only writers need them).
    fieldClocks: row.field_clocks === undefined ? {} : fieldClocksFromJson(row.field_clocks),
    checksum: row.checksum,
    seq: Number(row.seq),
    originDeviceId: row.origin_device_id,
    createdBy: row.created_by,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    deletedAt: row.deleted_at,
    editedAt: entity === 'comment' ? row.edited_at : null,
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

function toConflict(row: SyncConflictsTable): ConflictRecord {
  return {
    id: row.id,
    organizationId: row.organization_id,
    entity: row.entity as EntityName,
    entityId: row.entity_id,
    op: row.op as 'upsert' | 'delete',
    fields: JSON.parse(row.fields),
    localData: row.local_data === null ? null : JSON.parse(row.local_data),
    localClock: clockFromJson(row.local_clock),
    localDeviceId: row.local_device_id,
    remoteData: row.remote_data === null ? null : JSON.parse(row.remote_data),
    remoteClock: clockFromJson(row.remote_clock),
    remoteDeleted: row.remote_deleted === 1,
    status: row.status,
    resolution: row.resolution,
    resolvedBy: row.resolved_by,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
  };
}

const PRIORITY_RANK = sql`case priority when 'low' then 0 when 'medium' then 1 when 'high' then 2 else 3 end`;

/** Projects, tasks, comments, task history, conflicts and the organization's sync sequence. */
export class RecordsRepository {
  constructor(
    private readonly db: DbOrTx,
    private readonly dialect: DialectName,
  ) {}

  private get loose(): any {
    return this.db;
  }

  /** The same repository on another handle, e.g. a transaction the service opened (db/transaction.ts). */
  on(db: DbOrTx): RecordsRepository {
    return new RecordsRepository(db, this.dialect);
  }

  /**
   * Reads the organization's sequence counters, locking the row on PostgreSQL until the transaction ends:
   * writers of one organization take turns, so sequence numbers commit in order and reads of records
   * inside the transaction cannot race another writer. (SQLite has a single writer already.)
   */
  async lockOrganization(organizationId: string): Promise<OrganizationWriteState | undefined> {
    let q = this.db.selectFrom('organizations').select(['change_seq', 'purged_seq', 'storage_quota_bytes', 'storage_used_bytes']).where('id', '=', organizationId);
    if (this.dialect === 'postgres') q = q.forUpdate();
    const row = await q.executeTakeFirst();
    return (
      row && {
        changeSeq: Number(row.change_seq),
        purgedSeq: Number(row.purged_seq),
        storageQuotaBytes: row.storage_quota_bytes === null ? null : Number(row.storage_quota_bytes),
        storageUsedBytes: Number(row.storage_used_bytes),
      }
    );
  }

  async organizationSeqs(organizationId: string): Promise<{ changeSeq: number; purgedSeq: number } | undefined> {
    const row = await this.db.selectFrom('organizations').select(['change_seq', 'purged_seq']).where('id', '=', organizationId).executeTakeFirst();
    return row && { changeSeq: Number(row.change_seq), purgedSeq: Number(row.purged_seq) };
  }

  /** After a write: the last sequence number handed out and the bytes the live records now hold. */
  async setOrganizationCounters(organizationId: string, changeSeq: number, storageUsedBytes: number): Promise<void> {
    await this.db.updateTable('organizations').set({ change_seq: changeSeq, storage_used_bytes: storageUsedBytes }).where('id', '=', organizationId).execute();
  }

  async listMemberIds(organizationId: string): Promise<string[]> {
    const rows = await this.db.selectFrom('organization_members').select('user_id').where('organization_id', '=', organizationId).execute();
    return rows.map((r) => r.user_id);
  }

  /** Records by id in ANY organization (callers refuse foreign ones; ids are globally unique). */
  async findByIds(entity: EntityName, ids: string[]): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for (const part of chunks([...new Set(ids)], 500)) {
      if (part.length === 0) continue;
      const rows: AnyRow[] = await this.loose.selectFrom(RECORD_TABLES[entity]).selectAll().where('id', 'in', part).execute();
      for (const row of rows) out.push(fromRow(entity, row));
    }
    return out;
  }

  /** Records by id within one organization. */
  async findByIdsIn(entity: EntityName, organizationId: string, ids: string[]): Promise<StoredRecord[]> {
    const out: StoredRecord[] = [];
    for (const part of chunks([...new Set(ids)], 500)) {
      if (part.length === 0) continue;
      const rows: AnyRow[] = await this.loose.selectFrom(RECORD_TABLES[entity]).selectAll().where('organization_id', '=', organizationId).where('id', 'in', part).execute();
      for (const row of rows) out.push(fromRow(entity, row));
    }
    return out;
  }

  async get(entity: EntityName, organizationId: string, id: string): Promise<StoredRecord | undefined> {
    const row: AnyRow | undefined = await this.loose
      .selectFrom(RECORD_TABLES[entity])
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .executeTakeFirst();
    return row && fromRow(entity, row);
  }

  /**
   * Multi-row insert-or-update, chunked; an existing row is only updated within its own organization.
   * The statement text is built here rather than through the query builder: for 500 rows × 21 columns
   * compiling the builder's tree cost about a third of the statement's time (bench/sync.ts). Table and
   * column names are the constants above; every value is a bound parameter.
   */
  async upsertMany(records: StoredRecord[]): Promise<void> {
    for (const entity of ['project', 'task', 'comment'] as const) {
      const rows = records.filter((r) => r.entity === entity).map(toRow);
      if (rows.length === 0) continue;
      const columns = [...META_COLUMNS, ...DATA_COLUMNS[entity]];
      const table = RECORD_TABLES[entity];
      const update = columns
        .filter((c) => !INSERT_ONLY.has(c))
        .map((c) => `${c} = excluded.${c}`)
        .join(', ');
      const suffix = ` on conflict (id) do update set ${update} where ${table}.organization_id = excluded.organization_id`;
      for (const part of chunks(rows, Math.floor(MAX_PARAMS / columns.length))) {
        await this.insertRaw(table, columns, part, suffix);
      }
    }
  }

  /** `insert into <table> (<columns>) values (…), (…)<suffix>` with one bound parameter per value. */
  private async insertRaw(table: string, columns: string[], rows: AnyRow[], suffix = ''): Promise<void> {
    const params: unknown[] = [];
    const pg = this.dialect === 'postgres';
    const tuples = rows.map((row) => {
      const marks = columns.map((c) => {
        params.push(row[c] ?? null);
        return pg ? `$${params.length}` : '?';
      });
      return `(${marks.join(', ')})`;
    });
    await this.db.executeQuery(CompiledQuery.raw(`insert into ${table} (${columns.join(', ')}) values ${tuples.join(', ')}${suffix}`, params));
  }

  /** Changed records with since < seq <= until, oldest first, leaving out one device's own versions. */
  async listChanges(entity: EntityName, organizationId: string, since: number, until: number, excludeDeviceId: string | null, limit: number): Promise<StoredRecord[]> {
    let q = this.loose
      .selectFrom(RECORD_TABLES[entity])
      .select([...META_COLUMNS.filter((c) => c !== 'field_clocks'), ...DATA_COLUMNS[entity]])
      .where('organization_id', '=', organizationId)
      .where('seq', '>', since)
      .where('seq', '<=', until);
    if (excludeDeviceId) q = q.where((eb: any) => eb.or([eb('origin_device_id', 'is', null), eb('origin_device_id', '<>', excludeDeviceId)]));
    const rows: AnyRow[] = await q.orderBy('seq').limit(limit).execute();
    return rows.map((row) => fromRow(entity, row));
  }

  async listTasks(organizationId: string, f: TaskFilter): Promise<StoredRecord[]> {
    let q = this.db.selectFrom('rec_tasks').selectAll().where('organization_id', '=', organizationId);
    if (!f.includeDeleted) q = q.where('deleted_at', 'is', null);
    if (f.status) q = q.where('status', '=', f.status);
    if (f.projectId) q = q.where('project_id', '=', f.projectId);
    if (f.assigneeId) q = q.where('assignee_id', '=', f.assigneeId);
    if (f.updatedSince) q = q.where('updated_at', '>', f.updatedSince);
    if (f.tag) {
      // Tags are stored as a JSON array and cannot contain quotes or backslashes (records.entities.ts),
      // so the quoted tag occurs in the text exactly when it is an element.
      const needle = JSON.stringify(f.tag);
      q = this.dialect === 'postgres' ? q.where(sql<boolean>`strpos(tags, ${needle}) > 0`) : q.where(sql<boolean>`instr(tags, ${needle}) > 0`);
    }
    const desc = f.order.startsWith('-');
    const key = f.order.replace(/^-/, '');
    const dir = desc ? 'desc' : 'asc';
    if (key === 'priority') q = q.orderBy(PRIORITY_RANK as any, dir);
    else if (key === 'due_date') q = q.orderBy(sql`due_date is null`).orderBy('due_date', dir);
    else q = q.orderBy(key as 'title', dir);
    const rows = await q.orderBy('id').limit(f.limit).offset(f.offset).execute();
    return rows.map((row) => fromRow('task', row));
  }

  async listComments(organizationId: string, filter: { taskId?: string; includeDeleted?: boolean; limit: number; offset: number }): Promise<StoredRecord[]> {
    let q = this.db.selectFrom('rec_comments').selectAll().where('organization_id', '=', organizationId);
    if (filter.taskId) q = q.where('task_id', '=', filter.taskId);
    if (!filter.includeDeleted) q = q.where('deleted_at', 'is', null);
    const rows = await q.orderBy('created_at').orderBy('id').limit(filter.limit).offset(filter.offset).execute();
    return rows.map((row) => fromRow('comment', row));
  }

  async listProjects(organizationId: string, filter: { includeArchived: boolean; limit: number; offset: number }): Promise<StoredRecord[]> {
    let q = this.db.selectFrom('rec_projects').selectAll().where('organization_id', '=', organizationId).where('deleted_at', 'is', null);
    if (!filter.includeArchived) q = q.where('archived', '=', 0);
    const rows = await q.orderBy('name').orderBy('id').limit(filter.limit).offset(filter.offset).execute();
    return rows.map((row) => fromRow('project', row));
  }

  /** Every live record of an organization (the state a full resync converges to). */
  async listAll(entity: EntityName, organizationId: string): Promise<StoredRecord[]> {
    const rows: AnyRow[] = await this.loose.selectFrom(RECORD_TABLES[entity]).selectAll().where('organization_id', '=', organizationId).orderBy('id').execute();
    return rows.map((row) => fromRow(entity, row));
  }

  async insertHistory(entries: Array<Omit<TaskHistoryEntry, 'id'> & { organizationId: string }>): Promise<void> {
    const rows = entries.map(
      (e): Omit<RecTaskHistoryTable, 'id'> => ({
        organization_id: e.organizationId,
        task_id: e.taskId,
        user_id: e.userId,
        device_id: e.deviceId,
        op: e.op,
        changes: JSON.stringify(e.changes),
        version: e.version,
        created_at: e.createdAt,
      }),
    );
    const columns = ['organization_id', 'task_id', 'user_id', 'device_id', 'op', 'changes', 'version', 'created_at'];
    for (const part of chunks(rows, Math.floor(MAX_PARAMS / columns.length))) {
      if (part.length > 0) await this.insertRaw('rec_task_history', columns, part);
    }
  }

  async listHistory(organizationId: string, taskId: string, limit: number, offset: number): Promise<TaskHistoryEntry[]> {
    const rows = await this.db
      .selectFrom('rec_task_history')
      .selectAll()
      .where('organization_id', '=', organizationId)
      .where('task_id', '=', taskId)
      .orderBy('id')
      .limit(limit)
      .offset(offset)
      .execute();
    return rows.map((r) => ({
      id: Number(r.id),
      taskId: r.task_id,
      userId: r.user_id,
      deviceId: r.device_id,
      op: r.op,
      changes: JSON.parse(r.changes),
      version: r.version,
      createdAt: r.created_at,
    }));
  }

  async insertConflicts(conflicts: ConflictRecord[]): Promise<void> {
    const rows: SyncConflictsTable[] = conflicts.map((c) => ({
      id: c.id,
      organization_id: c.organizationId,
      entity: c.entity,
      entity_id: c.entityId,
      op: c.op,
      fields: JSON.stringify(c.fields),
      local_data: c.localData === null ? null : JSON.stringify(c.localData),
      local_clock: JSON.stringify(c.localClock),
      local_device_id: c.localDeviceId,
      remote_data: c.remoteData === null ? null : JSON.stringify(c.remoteData),
      remote_clock: JSON.stringify(c.remoteClock),
      remote_deleted: c.remoteDeleted ? 1 : 0,
      status: c.status,
      resolution: c.resolution,
      resolved_by: c.resolvedBy,
      created_at: c.createdAt,
      resolved_at: c.resolvedAt,
    }));
    for (const part of chunks(rows, Math.floor(MAX_PARAMS / 17))) {
      if (part.length > 0) await this.db.insertInto('sync_conflicts').values(part).execute();
    }
  }

  async listConflicts(organizationId: string, filter: { status?: 'open' | 'resolved'; limit: number; offset: number }): Promise<ConflictRecord[]> {
    let q = this.db.selectFrom('sync_conflicts').selectAll().where('organization_id', '=', organizationId);
    if (filter.status) q = q.where('status', '=', filter.status);
    const rows = await q.orderBy('created_at').orderBy('id').limit(filter.limit).offset(filter.offset).execute();
    return rows.map(toConflict);
  }

  async getConflict(organizationId: string, id: string): Promise<ConflictRecord | undefined> {
    const row = await this.db.selectFrom('sync_conflicts').selectAll().where('organization_id', '=', organizationId).where('id', '=', id).executeTakeFirst();
    return row && toConflict(row);
  }

  async markConflictResolved(organizationId: string, id: string, resolution: string, resolvedBy: string, resolvedAt: string): Promise<void> {
    await this.db
      .updateTable('sync_conflicts')
      .set({ status: 'resolved', resolution, resolved_by: resolvedBy, resolved_at: resolvedAt })
      .where('organization_id', '=', organizationId)
      .where('id', '=', id)
      .execute();
  }

  /** Ids of the tombstones of `entity` deleted before `cutoff` (a subquery). */
  private purgeable(entity: EntityName, cutoff: string) {
    return this.loose.selectFrom(RECORD_TABLES[entity]).select('id').where('deleted_at', 'is not', null).where('deleted_at', '<', cutoff);
  }

  /** Comments that go with purged tasks although they are not purgeable tombstones themselves (a subquery of rec_comments). */
  private commentsOfPurgedTasks(cutoff: string) {
    return this.loose
      .selectFrom('rec_comments')
      .where('task_id', 'in', this.purgeable('task', cutoff))
      .where((eb: any) => eb.or([eb('deleted_at', 'is', null), eb('deleted_at', '>=', cutoff)]));
  }

  /** Resolved conflicts of records that are being purged (a subquery of sync_conflicts). */
  private conflictsOfPurged(cutoff: string) {
    return this.loose
      .selectFrom('sync_conflicts')
      .where('status', '=', 'resolved')
      .where((eb: any) =>
        eb.or([
          eb.and([eb('entity', '=', 'project'), eb('entity_id', 'in', this.purgeable('project', cutoff))]),
          eb.and([eb('entity', '=', 'task'), eb('entity_id', 'in', this.purgeable('task', cutoff))]),
          eb.and([eb('entity', '=', 'comment'), eb('entity_id', 'in', this.purgeable('comment', cutoff))]),
          eb.and([eb('entity', '=', 'comment'), eb('entity_id', 'in', this.commentsOfPurgedTasks(cutoff).select('id'))]),
        ]),
      );
  }

  /**
   * What a purge at `cutoff` removes, per organization: tombstones (count and highest sequence number),
   * the comments of purged tasks that are not tombstones themselves (a comment pushed onto a task that was
   * concurrently deleted stays live under its tombstone: docs/sync-protocol.md), and resolved conflicts of
   * purged records (issue 12: both were kept forever).
   */
  async purgeStats(cutoff: string): Promise<{
    tombstones: Array<{ entity: EntityName; organizationId: string; count: number; maxSeq: number }>;
    commentsOfPurgedTasks: Array<{ organizationId: string; count: number; maxSeq: number }>;
    conflicts: number;
  }> {
    const tombstones: Array<{ entity: EntityName; organizationId: string; count: number; maxSeq: number }> = [];
    for (const entity of ['project', 'task', 'comment'] as const) {
      const rows: AnyRow[] = await this.loose
        .selectFrom(RECORD_TABLES[entity])
        .select(['organization_id', (eb: any) => eb.fn.countAll().as('n'), (eb: any) => eb.fn.max('seq').as('max_seq')])
        .where('deleted_at', 'is not', null)
        .where('deleted_at', '<', cutoff)
        .groupBy('organization_id')
        .execute();
      for (const r of rows) tombstones.push({ entity, organizationId: r.organization_id, count: Number(r.n), maxSeq: Number(r.max_seq) });
    }
    const orphans: AnyRow[] = await this.commentsOfPurgedTasks(cutoff)
      .select(['organization_id', (eb: any) => eb.fn.countAll().as('n'), (eb: any) => eb.fn.max('seq').as('max_seq')])
      .groupBy('organization_id')
      .execute();
    const conflicts: AnyRow = await this.conflictsOfPurged(cutoff).select((eb: any) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow();
    return {
      tombstones,
      commentsOfPurgedTasks: orphans.map((r) => ({ organizationId: r.organization_id, count: Number(r.n), maxSeq: Number(r.max_seq) })),
      conflicts: Number(conflicts.n),
    };
  }

  /**
   * Hard-deletes tombstones older than `cutoff` with what belongs to them — a purged task's history and
   * comments, resolved conflicts of purged records — and raises each organization's purge horizon.
   * Open conflicts are kept: they still hold a device's unapplied change for someone to decide on.
   */
  async purgeTombstones(cutoff: string, horizons: Map<string, number>): Promise<void> {
    await this.loose.deleteFrom('sync_conflicts').where('id', 'in', this.conflictsOfPurged(cutoff).select('id')).execute();
    await this.db.deleteFrom('rec_task_history').where('task_id', 'in', this.purgeable('task', cutoff)).execute();
    await this.loose.deleteFrom('rec_comments').where('task_id', 'in', this.purgeable('task', cutoff)).execute();
    for (const entity of ['project', 'task', 'comment'] as const) {
      await this.loose.deleteFrom(RECORD_TABLES[entity]).where('deleted_at', 'is not', null).where('deleted_at', '<', cutoff).execute();
    }
    for (const [organizationId, seq] of horizons) {
      await this.db
        .updateTable('organizations')
        .set({ purged_seq: sql<number>`case when purged_seq < ${seq} then ${seq} else purged_seq end` })
        .where('id', '=', organizationId)
        .execute();
    }
  }
}
