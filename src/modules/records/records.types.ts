import type { VectorClock } from './vector-clock.ts';
import type { EntityName, RecordData } from './records.entities.ts';

/** One project, task or comment as stored, with its sync metadata (domain form, not a row). */
export interface StoredRecord {
  entity: EntityName;
  id: string;
  organizationId: string;
  data: RecordData;
  version: number;
  vectorClock: VectorClock;
  /** Per field: the clock of the change that last wrote it; decides whether concurrent edits overlap. */
  fieldClocks: Record<string, VectorClock>;
  checksum: string;
  /** Organization-wide sequence number of the last write; pull cursors point into it. */
  seq: number;
  /** Device whose change this version is exactly; null for server-made versions (REST, merges). */
  originDeviceId: string | null;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
  deletedAt: string | null;
  /** Comments only: when the body was last changed after creation. */
  editedAt: string | null;
}

export interface TaskHistoryEntry {
  id: number;
  taskId: string;
  userId: string | null;
  deviceId: string | null;
  op: string;
  changes: Record<string, { old: unknown; new: unknown }>;
  version: number;
  createdAt: string;
}

export interface ConflictRecord {
  id: string;
  organizationId: string;
  entity: EntityName;
  entityId: string;
  op: 'upsert' | 'delete';
  /** The fields both sides changed (['*'] when one side is a delete). */
  fields: string[];
  localData: RecordData | null;
  localClock: VectorClock;
  localDeviceId: string | null;
  remoteData: RecordData | null;
  remoteClock: VectorClock;
  remoteDeleted: boolean;
  status: 'open' | 'resolved';
  resolution: string | null;
  resolvedBy: string | null;
  createdAt: string;
  resolvedAt: string | null;
}

export interface TaskFilter {
  status?: string;
  projectId?: string;
  assigneeId?: string;
  tag?: string;
  updatedSince?: string;
  includeDeleted?: boolean;
  order: TaskOrder;
  limit: number;
  offset: number;
}

export const TASK_ORDERS = ['created_at', '-created_at', 'updated_at', '-updated_at', 'due_date', '-due_date', 'priority', '-priority', 'title', '-title'] as const;
export type TaskOrder = (typeof TASK_ORDERS)[number];

/**
 * What records tell the outside world after a write: "organization X changed up to sequence number N".
 * The sync module's event fan-out (SyncEvents) implements it; records never import sync (issue 8: the
 * records <-> sync import cycle), app.ts hands the implementation in.
 */
export interface RecordChangePublisher {
  publish(notice: { organizationId: string; seq: number; originDeviceId: string | null }): void;
}

/** The organization row as a writer sees it under its lock (RecordsRepository.lockOrganization). */
export interface OrganizationWriteState {
  changeSeq: number;
  purgedSeq: number;
  /** null = unlimited. */
  storageQuotaBytes: number | null;
  /** Bytes of the live records' client-written text (recordBytes). */
  storageUsedBytes: number;
}
