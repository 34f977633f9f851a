import { ENTITY_SPECS } from './records.entities.ts';
import type { ConflictRecord, StoredRecord, TaskHistoryEntry } from './records.types.ts';

// Wire forms (snake_case JSON) of records; routes and the sync protocol share them.

/** REST form: data fields flattened next to the sync metadata. */
export function recordJson(r: StoredRecord): Record<string, unknown> {
  const out: Record<string, unknown> = { id: r.id };
  for (const f of ENTITY_SPECS[r.entity].fields) out[f] = r.data[f] ?? null;
  if (r.entity === 'comment') out.edited_at = r.editedAt;
  return {
    ...out,
    version: r.version,
    vector_clock: r.vectorClock,
    checksum: r.checksum,
    created_by: r.createdBy,
    created_at: r.createdAt,
    updated_at: r.updatedAt,
    deleted_at: r.deletedAt,
  };
}

/** Sync form: one change as pulled (a tombstone has op "delete" and data null). */
export function changeJson(r: StoredRecord): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  for (const f of ENTITY_SPECS[r.entity].fields) data[f] = r.data[f] ?? null;
  if (r.entity === 'comment') data.edited_at = r.editedAt;
  return {
    entity: r.entity,
    id: r.id,
    op: r.deletedAt ? 'delete' : 'upsert',
    version: r.version,
    vector_clock: r.vectorClock,
    checksum: r.checksum,
    updated_at: r.updatedAt,
    deleted_at: r.deletedAt,
    data: r.deletedAt ? null : data,
  };
}

export function conflictJson(c: ConflictRecord): Record<string, unknown> {
  return {
    id: c.id,
    entity: c.entity,
    entity_id: c.entityId,
    op: c.op,
    fields: c.fields,
    local: { data: c.localData, vector_clock: c.localClock, device_id: c.localDeviceId },
    remote: { data: c.remoteData, vector_clock: c.remoteClock, deleted: c.remoteDeleted },
    status: c.status,
    resolution: c.resolution,
    resolved_by: c.resolvedBy,
    created_at: c.createdAt,
    resolved_at: c.resolvedAt,
  };
}

export function historyJson(h: TaskHistoryEntry): Record<string, unknown> {
  return { id: h.id, task_id: h.taskId, user_id: h.userId, device_id: h.deviceId, op: h.op, changes: h.changes, version: h.version, created_at: h.createdAt };
}
