import { randomUUID } from 'node:crypto';
import type { DbOrTx } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { RecordWriter, WriteChange } from './record-writer.ts';
import { missingRequired, parseRecordData, RECORD_ID_SCHEMA, type EntityName } from './records.entities.ts';
import type { RecordsRepository } from './records.repository.ts';
import type { RecordChangePublisher, StoredRecord, TaskFilter, TaskHistoryEntry } from './records.types.ts';

/**
 * REST access to projects, tasks and comments. Writes go through the same RecordWriter as sync pushes
 * (as server-made changes: the clock's `server` entry advances), so devices pull REST edits like any other.
 */
export class RecordsService {
  constructor(
    private readonly db: DbOrTx,
    private readonly records: RecordsRepository,
    private readonly writer: RecordWriter,
    private readonly events: RecordChangePublisher,
  ) {}

  async get(ctx: OrgContext, entity: EntityName, id: string): Promise<StoredRecord> {
    const record = RECORD_ID_SCHEMA.safeParse(id).success ? await this.records.get(entity, ctx.organizationId, id) : undefined;
    if (!record || record.deletedAt) throw new AppError('not_found', `${entity} not found`);
    return record;
  }

  async create(ctx: OrgContext, entity: EntityName, input: Record<string, unknown>): Promise<StoredRecord> {
    const { id = randomUUID(), ...rest } = input as { id?: unknown } & Record<string, unknown>;
    if (!RECORD_ID_SCHEMA.safeParse(id).success) throw new AppError('invalid_request', 'id must be 1-64 letters, digits, "_" or "-" (a UUID)');
    const data = this.parse(entity, rest);
    const missing = missingRequired(entity, data);
    if (missing.length > 0) throw new AppError('invalid_request', `a new ${entity} needs ${missing.join(', ')}`);
    return this.writeOne(ctx, { entity, id: id as string, op: 'upsert', clock: 'server', data, mustCreate: true });
  }

  async update(ctx: OrgContext, entity: EntityName, id: string, patch: Record<string, unknown>, expectedVersion?: number): Promise<StoredRecord> {
    await this.get(ctx, entity, id);
    const data = this.parse(entity, patch);
    return this.writeOne(ctx, { entity, id, op: 'upsert', clock: 'server', data, mustExist: true, expectedVersion });
  }

  async remove(ctx: OrgContext, entity: EntityName, id: string, expectedVersion?: number): Promise<void> {
    await this.get(ctx, entity, id);
    await this.writeOne(ctx, { entity, id, op: 'delete', clock: 'server', data: {}, mustExist: true, expectedVersion });
  }

  async archiveProject(ctx: OrgContext, id: string): Promise<StoredRecord> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'archiving a project needs the admin role');
    return this.update(ctx, 'project', id, { archived: true });
  }

  listTasks(ctx: OrgContext, filter: TaskFilter): Promise<StoredRecord[]> {
    return this.records.listTasks(ctx.organizationId, filter);
  }

  async history(ctx: OrgContext, taskId: string, limit: number, offset: number): Promise<TaskHistoryEntry[]> {
    const task = RECORD_ID_SCHEMA.safeParse(taskId).success ? await this.records.get('task', ctx.organizationId, taskId) : undefined;
    if (!task) throw new AppError('not_found', 'task not found');
    return this.records.listHistory(ctx.organizationId, taskId, limit, offset);
  }

  async listComments(ctx: OrgContext, filter: { taskId?: string; limit: number; offset: number }): Promise<StoredRecord[]> {
    if (filter.taskId !== undefined) await this.get(ctx, 'task', filter.taskId);
    return this.records.listComments(ctx.organizationId, filter);
  }

  listProjects(ctx: OrgContext, filter: { includeArchived: boolean; limit: number; offset: number }): Promise<StoredRecord[]> {
    return this.records.listProjects(ctx.organizationId, filter);
  }

  private parse(entity: EntityName, input: Record<string, unknown>) {
    const parsed = parseRecordData(entity, input);
    if ('problem' in parsed) throw new AppError('invalid_request', parsed.problem);
    return parsed.data;
  }

  private async writeOne(ctx: OrgContext, change: WriteChange): Promise<StoredRecord> {
    const result = await inTransaction(this.db, async (tx) => {
      const repo = this.records.on(tx);
      const seqs = await repo.lockOrganization(ctx.organizationId);
      if (!seqs) throw new AppError('not_found', 'organization not found');
      const write = await this.writer.write(repo, ctx.organizationId, seqs, { userId: ctx.userId, role: ctx.role, deviceId: null }, [change]);
      const outcome = write.outcomes[0]!;
      if (outcome.status === 'rejected') throw new AppError(outcome.forbidden ? 'forbidden' : 'invalid_request', outcome.reason ?? 'rejected');
      return { record: outcome.record!, seq: write.changeSeq };
    });
    this.events.publish({ organizationId: ctx.organizationId, seq: result.seq, originDeviceId: null });
    return result.record;
  }
}
