import { createHash } from 'node:crypto';
import * as z from '../../lib/zod.ts';

/**
 * What each synced entity holds and how its client-writable fields are validated. Pure logic: the same
 * rules serve REST writes and sync pushes (issue 5). `data` values are in their JSON form (tags array,
 * custom_fields object, archived boolean); repositories convert to and from columns.
 */
export type EntityName = 'project' | 'task' | 'comment';
export const ENTITY_NAMES: readonly EntityName[] = ['project', 'task', 'comment'];

export type RecordData = Record<string, unknown>;

export const TASK_STATUSES = ['todo', 'in_progress', 'done', 'cancelled'] as const;
export const TASK_PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];

/**
 * Allowed status transitions. Finished work can be reopened (back to todo) but not jump straight back
 * into progress or between done and cancelled, so the history always shows a reopen.
 */
export const STATUS_TRANSITIONS: Record<TaskStatus, readonly TaskStatus[]> = {
  todo: ['in_progress', 'done', 'cancelled'],
  in_progress: ['todo', 'done', 'cancelled'],
  done: ['todo'],
  cancelled: ['todo'],
};

export function transitionProblem(from: string, to: string): string | null {
  if (from === to) return null;
  const allowed = STATUS_TRANSITIONS[from as TaskStatus] ?? [];
  return allowed.includes(to as TaskStatus) ? null : `status cannot change from ${from} to ${to} (allowed: ${allowed.join(', ') || 'none'})`;
}

const id = z.string().check(z.minLength(1), z.maxLength(64), z.regex(/^[A-Za-z0-9_-]+$/, 'ids are 1-64 letters, digits, "_" or "-"'));
// No quotes, backslashes or control characters: tags are matched as JSON text (see records.repository.ts).
const tag = z.string().check(z.regex(/^[^"\\\u0000-\u001f]{1,64}$/, 'tags are 1-64 characters without quotes, backslashes or control characters'));
const dueDate = z.string().check(
  z.regex(/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2}))?$/, 'due_date must be YYYY-MM-DD or an ISO-8601 date-time'),
  z.refine((v) => !Number.isNaN(Date.parse(v)), 'due_date is not a real date'),
);
// Values are stored exactly as sent (never trimmed): a device that pushed a value must hold the same
// bytes as the server, or its copy would silently differ (its own changes are not pulled back).
const notBlank = (max: number) => z.string().check(z.maxLength(max), z.refine((v) => v.trim().length > 0, 'must not be empty or blank'));
const MAX_CUSTOM_FIELDS_BYTES = 16 * 1024;
export const MAX_CUSTOM_FIELDS_DEPTH = 32;
// Depth first, without recursion: JSON.stringify (the size check) and canonicalJson (checksums) recurse,
// and 10,000 levels overflowed the stack into a 500 (issue 12).
const customFields = z.record(z.string().check(z.minLength(1), z.maxLength(64)), z.unknown()).check(
  z.superRefine((v, ctx) => {
    if (jsonDepthExceeds(v, MAX_CUSTOM_FIELDS_DEPTH)) {
      ctx.addIssue({ code: 'custom', message: `custom_fields must nest at most ${MAX_CUSTOM_FIELDS_DEPTH} levels deep` });
    } else if (JSON.stringify(v).length > MAX_CUSTOM_FIELDS_BYTES) {
      ctx.addIssue({ code: 'custom', message: `custom_fields must be at most ${MAX_CUSTOM_FIELDS_BYTES} bytes of JSON` });
    }
  }),
);

/** True when `value` nests objects/arrays more than `max` levels deep (the top level is 1). Iterative. */
export function jsonDepthExceeds(value: unknown, max: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (node === null || typeof node !== 'object') continue;
    if (depth > max) return true;
    for (const child of Object.values(node)) if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
  }
  return false;
}

interface EntitySpec {
  /** Client-writable fields, in a stable order. */
  fields: readonly string[];
  required: readonly string[];
  /** Fields that cannot change once created (a comment stays on its task and in its thread). */
  immutable: readonly string[];
  defaults: RecordData;
  schema: z.ZodMiniObject;
}

export const ENTITY_SPECS: Record<EntityName, EntitySpec> = {
  project: {
    fields: ['name', 'archived'],
    required: ['name'],
    immutable: [],
    defaults: { archived: false },
    schema: z.partial(z.strictObject({ name: notBlank(200), archived: z.boolean() })),
  },
  task: {
    fields: ['title', 'description', 'status', 'priority', 'due_date', 'assignee_id', 'project_id', 'tags', 'custom_fields'],
    required: ['title'],
    immutable: [],
    defaults: { description: '', status: 'todo', priority: 'medium', due_date: null, assignee_id: null, project_id: null, tags: [], custom_fields: {} },
    schema: z.partial(
      z.strictObject({
        title: notBlank(500),
        description: z.string().check(z.maxLength(20_000)),
        status: z.enum(TASK_STATUSES),
        priority: z.enum(TASK_PRIORITIES),
        due_date: z.nullable(dueDate),
        assignee_id: z.nullable(z.string().check(z.minLength(1), z.maxLength(64))),
        project_id: z.nullable(id),
        tags: z.array(tag).check(
          z.maxLength(50),
          z.refine((t) => new Set(t).size === t.length, 'tags must be unique'),
        ),
        custom_fields: customFields,
      }),
    ),
  },
  comment: {
    fields: ['task_id', 'parent_id', 'body'],
    required: ['task_id', 'body'],
    immutable: ['task_id', 'parent_id'],
    defaults: { parent_id: null },
    schema: z.partial(z.strictObject({ task_id: id, parent_id: z.nullable(id), body: z.string().check(z.minLength(1), z.maxLength(20_000)) })),
  },
};

export const RECORD_ID_SCHEMA = id;

/** Validates a (partial) data object; returns the parsed data or a one-line problem. */
export function parseRecordData(entity: EntityName, data: unknown): { data: RecordData } | { problem: string } {
  const result = ENTITY_SPECS[entity].schema.safeParse(data ?? {});
  if (result.success) return { data: result.data as RecordData };
  const issue = result.error.issues[0]!;
  const where = issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { problem: `${entity} data ${where}${issue.message}` };
}

export function missingRequired(entity: EntityName, data: RecordData): string[] {
  return ENTITY_SPECS[entity].required.filter((f) => data[f] === undefined);
}

/** Deterministic JSON: object keys sorted at every depth, so equal data has one serialisation. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const obj = value as Record<string, unknown>;
    return `{${Object.keys(obj)
      .filter((k) => obj[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value ?? null);
}

export function sameValue(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** sha256 of the synced fields and the deleted flag: two replicas agree iff their checksums do. */
export function recordChecksum(entity: EntityName, data: RecordData, deleted: boolean): string {
  const synced: RecordData = {};
  for (const field of ENTITY_SPECS[entity].fields) synced[field] = data[field] ?? null;
  return createHash('sha256').update(canonicalJson({ e: entity, d: synced, x: deleted })).digest('hex');
}

/**
 * What a record counts against its organization's storage quota: the UTF-8 bytes of the text a client
 * writes — a project's name; a task's title, description, tags and custom fields (as stored, JSON); a
 * comment's body. Live records only: a tombstone frees its bytes. Migration 0007 computes the same sum in
 * SQL for existing rows, so keep the two in step.
 */
export function recordBytes(entity: EntityName, data: RecordData): number {
  const b = (v: unknown) => Buffer.byteLength(String(v ?? ''), 'utf8');
  switch (entity) {
    case 'project':
      return b(data.name);
    case 'task':
      return b(data.title) + b(data.description) + b(JSON.stringify(data.tags ?? [])) + b(JSON.stringify(data.custom_fields ?? {}));
    case 'comment':
      return b(data.body);
  }
}
