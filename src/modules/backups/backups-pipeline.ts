import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { inTransaction } from '../../db/transaction.ts';
import { lineFilter, PatternError } from '../../lib/line-patterns.ts';
import type { Logger } from '../../logger.ts';
import { STORAGE_RESULTS_STREAM, type PrunedResult, type StorageResult, type StorageTasks } from '../../storage/backup-plugins/storage-tasks.ts';
import { StreamConsumer } from '../../streams/stream-consumer.ts';
import type { StreamEntry, StreamLog } from '../../streams/stream.port.ts';
import type { BackupsRepository } from './backups.repository.ts';
import type { BackupLocation, NetworkDevice, StorageOutcome } from './backups.types.ts';
import { DEVICE_RESULTS_STREAM, type DeviceResultEntry } from './network-devices.service.ts';

/** Consumer groups: one per stage, shared by every process running that consumer. */
export const DISPATCH_GROUP = 'backups-dispatch';
export const INDEX_GROUP = 'backups-index';

/**
 * Entries of `device:results` read at a time. Each carries a whole configuration (base64, up to
 * STORMVAULT_BACKUPS_MAX_BYTES), so the stream's default batch of 100 would hold up to 100 of them in
 * memory at once (and their decoded copies and task arguments): server RSS ≤ 200 MB (issue 9 bench).
 */
const DEVICE_RESULTS_BATCH = 10;

export interface BackupsPipelineDeps {
  repo: BackupsRepository;
  streams: StreamLog;
  storageTasks: StorageTasks;
  clock: Clock;
  logger: Logger;
  /** Runs after an outcome was applied for the first time (a redelivered entry does not call it again). */
  onOutcome?: (outcome: StorageOutcome) => Promise<void>;
}

/**
 * The two consumers of the backups pipeline (issue 9):
 * - `device:results` → strip patterns → a `storage.store.<type>` task on the location's queue
 *   (idempotency key = task identifier, so a re-delivered entry never enqueues twice);
 * - `storage:results` → `stored_backups` row (when changed) and device status, exactly once per task
 *   identifier (BackupsRepository.applyOutcome).
 */
export class BackupsPipeline {
  constructor(private readonly deps: BackupsPipelineDeps) {}

  /**
   * The daily upkeep: one `storage.maintain.<type>` task per location (git maintenance, fs pruning by
   * keep_versions / keep_days), once per location and day whichever process runs it.
   */
  async enqueueMaintenance(now: Date): Promise<number> {
    const day = now.toISOString().slice(0, 10);
    const locations = await this.deps.repo.allLocations();
    for (const l of locations) {
      await this.deps.storageTasks.maintain[l.type].enqueue(
        { storage_backend: l.type, storage_config: { organization_id: l.organizationId, ...l.config }, location_id: l.id, now: now.toISOString() },
        { idempotencyKey: `backup-maintain:${l.id}:${day}` },
      );
    }
    return locations.length;
  }

  /** A consumer of `device:results` (name unique per process). */
  deviceResultsConsumer(name = consumerName()): StreamConsumer<DeviceResultEntry> {
    return new StreamConsumer<DeviceResultEntry>({
      log: this.deps.streams,
      stream: DEVICE_RESULTS_STREAM,
      group: DISPATCH_GROUP,
      consumer: name,
      batch: DEVICE_RESULTS_BATCH,
      logger: this.deps.logger,
      handle: (e) => this.handleDeviceResult(e),
    });
  }

  /** A consumer of `storage:results`. */
  storageResultsConsumer(name = consumerName()): StreamConsumer<StorageResult | PrunedResult> {
    return new StreamConsumer<StorageResult | PrunedResult>({
      log: this.deps.streams,
      stream: STORAGE_RESULTS_STREAM,
      group: INDEX_GROUP,
      consumer: name,
      logger: this.deps.logger,
      handle: (e) => this.handleStorageResult(e),
    });
  }

  async handleDeviceResult(entry: StreamEntry<DeviceResultEntry>): Promise<void> {
    const r = entry.payload;
    if (!r || typeof r.task_identifier !== 'string' || typeof r.organization_id !== 'string' || typeof r.network_device_id !== 'string') {
      this.deps.logger.warn({ entry: entry.id }, 'device:results: malformed entry dropped');
      return;
    }
    const device = await this.deps.repo.findDevice(r.organization_id, r.network_device_id);
    if (!device) return; // deleted since: nothing to store
    const location = await this.deps.repo.findLocation(r.organization_id, device.backupLocationId);
    if (!location) return;
    if (r.error !== undefined || typeof r.content_b64 !== 'string') {
      await this.#fail(device, location, r, r.error ?? 'no configuration collected');
      return;
    }
    // Passed on as it came unless strip patterns change it: decoding and re-encoding ~25 KB a device
    // would give the storage task the same bytes (base64 decoding is the same for both forms).
    let contentB64 = r.content_b64;
    if (device.stripPatterns.length) {
      try {
        contentB64 = Buffer.from(lineFilter(device.stripPatterns).apply(Buffer.from(r.content_b64, 'base64').toString('utf8')), 'utf8').toString('base64');
      } catch (err) {
        if (!(err instanceof PatternError)) throw err;
        await this.#fail(device, location, r, err.message);
        return;
      }
    }
    const task = this.deps.storageTasks.store[location.type];
    await task.enqueue(
      {
        content_b64: contentB64,
        storage_backend: location.type,
        storage_config: { organization_id: location.organizationId, ...location.config },
        rel_path: `${device.group}/${device.name}`,
        task_identifier: r.task_identifier,
        collected_at: r.collected_at,
        ignore_patterns: Array.isArray(r.ignore_patterns) ? [...device.ignorePatterns, ...r.ignore_patterns.filter((p) => typeof p === 'string')] : device.ignorePatterns,
        context: { organization_id: device.organizationId, network_device_id: device.id, location_id: location.id },
      },
      { idempotencyKey: `backup-store:${r.task_identifier}` },
    );
  }

  async handleStorageResult(entry: StreamEntry<StorageResult | PrunedResult>): Promise<void> {
    const p = entry.payload;
    if (p && 'kind' in p && p.kind === 'pruned') {
      // Removing rows is idempotent by itself: a second delivery finds nothing to delete.
      if (Array.isArray(p.removed)) await this.deps.repo.deleteBackupsByRefs(p.organization_id, p.location_id, p.removed.filter((x) => typeof x === 'string'));
      return;
    }
    const r = p as StorageResult;
    const ctx = r?.context;
    if (!r || typeof r.task_identifier !== 'string' || !ctx?.organization_id || !ctx.network_device_id || !ctx.location_id) {
      this.deps.logger.warn({ entry: entry.id }, 'storage:results: malformed entry dropped');
      return;
    }
    const ok = r.error === null && r.storage_ref !== null && r.sha256 !== null && r.size !== null;
    await this.#apply({
      taskIdentifier: r.task_identifier,
      organizationId: ctx.organization_id,
      networkDeviceId: ctx.network_device_id,
      locationId: ctx.location_id,
      collectedAt: r.collected_at,
      processedAt: this.deps.clock.now().toISOString(),
      stored: ok ? { storageRef: r.storage_ref!, sha256: r.sha256!, size: r.size!, changed: r.changed, backupId: randomUUID() } : null,
      error: ok ? null : (r.error ?? 'storage failed'),
    });
  }

  /**
   * applyOutcome (its marker row and index writes in one transaction: idempotent by task identifier),
   * then the onOutcome hook once (its failure is logged: the index write stands).
   */
  async #apply(o: StorageOutcome): Promise<void> {
    const repo = this.deps.repo;
    const first = await inTransaction(repo.handle, (tx) => repo.on(tx).applyOutcome(o));
    if (!first || !this.deps.onOutcome) return;
    try {
      await this.deps.onOutcome(o);
    } catch (err) {
      this.deps.logger.warn({ err, taskIdentifier: o.taskIdentifier }, 'backups: the outcome hook failed');
    }
  }

  #fail(device: NetworkDevice, location: BackupLocation, r: DeviceResultEntry, error: string) {
    return this.#apply({
      taskIdentifier: r.task_identifier,
      organizationId: device.organizationId,
      networkDeviceId: device.id,
      locationId: location.id,
      collectedAt: r.collected_at,
      processedAt: this.deps.clock.now().toISOString(),
      stored: null,
      error: error.slice(0, 1000),
    });
  }
}

function consumerName(): string {
  return `${process.pid}-${randomUUID().slice(0, 8)}`;
}
