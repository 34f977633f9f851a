import { AppError } from '../../errors.ts';
import type { LocalBackupReads } from '../../storage/backup-plugins/local-reads.ts';
import type { StorageTasks } from '../../storage/backup-plugins/storage-tasks.ts';
import { TaskWaitTimeoutError } from '../../tasks/errors.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { BackupsRepository } from './backups.repository.ts';
import { ID_RE } from './backups.schemas.ts';
import type { NetworkDevice, Page, StoredBackup } from './backups.types.ts';

/** Versions larger than this (together) are not diffed in the request: 400, download them instead. */
export const DIFF_MAX_BYTES = 8 * 1024 * 1024;
/** A diff of two very different large versions gives up after this long (the `diff` package's timeout). */
const DIFF_TIMEOUT_MS = 2000;

export interface DiffHunk {
  oldStart: number;
  oldLines: number;
  newStart: number;
  newLines: number;
  lines: string[];
}

/**
 * Reading backups (issue 9): history and single versions come from the index (`stored_backups`), never
 * from walking git, so a device with 10,000 versions lists in milliseconds; contents come from a storage
 * worker (`storage.read.<type>`), waited for at most STORMVAULT_BACKUPS_READ_TIMEOUT, then 504.
 */
export class StoredBackupsService {
  constructor(
    private readonly repo: BackupsRepository,
    private readonly storageTasks: StorageTasks,
    private readonly readTimeoutMs: number,
    /** The task framework's cancel (a read nobody waits for any more should not run). */
    private readonly cancelTask: (taskId: string) => Promise<unknown>,
    /** Diffs read both versions here when the location is on this host (no queue round trip). */
    private readonly localReads?: LocalBackupReads,
  ) {}

  async history(ctx: OrgContext, device: NetworkDevice, limit: number, cursor: string | undefined): Promise<Page<StoredBackup>> {
    const before = cursor === undefined ? null : decodeCursor(cursor);
    const items = await this.repo.history(ctx.organizationId, device.id, limit + 1, before);
    const more = items.length > limit;
    if (more) items.pop();
    const last = items.at(-1);
    return { items, nextCursor: more && last ? Buffer.from(`${last.collectedAt}|${last.id}`).toString('base64url') : null };
  }

  async get(ctx: OrgContext, id: string): Promise<StoredBackup> {
    const b = typeof id === 'string' && ID_RE.test(id) ? await this.repo.findBackup(ctx.organizationId, id) : undefined;
    if (!b) throw new AppError('not_found', 'no such stored backup');
    return b;
  }

  /** The content of one version, read by a storage worker. */
  async content(ctx: OrgContext, id: string): Promise<{ backup: StoredBackup; device: NetworkDevice | undefined; content: Buffer }> {
    const backup = await this.get(ctx, id);
    const [device, [content]] = await Promise.all([this.repo.findDevice(ctx.organizationId, backup.networkDeviceId), this.#read(ctx, backup.locationId, [backup.storageRef])]);
    return { backup, device, content: content! };
  }

  /** Versions of one location, read by one `storage.read.<type>` task within the read timeout. */
  async #read(ctx: OrgContext, locationId: string, refs: string[]): Promise<Buffer[]> {
    const location = await this.repo.findLocation(ctx.organizationId, locationId);
    if (!location) throw new AppError('not_found', 'the backup location of this version no longer exists');
    const result = await this.storageTasks.read[location.type].enqueue({
      storage_backend: location.type,
      storage_config: { organization_id: location.organizationId, ...location.config },
      storage_refs: refs,
    });
    try {
      await result.wait({ timeoutMs: this.readTimeoutMs });
    } catch (err) {
      if (!(err instanceof TaskWaitTimeoutError)) throw err;
      // Nobody will want the answer any more: take the task back if no worker has started it.
      await this.cancelTask(result.id).catch(() => {});
      throw new AppError('storage_worker_unavailable', `no ${location.type} storage worker answered within ${Math.round(this.readTimeoutMs / 1000)} s (is \`stormvault worker --queue storage.${location.type}\` running?)`);
    }
    if (result.status !== 'SUCCESSFUL') {
      const last = result.errors.at(-1);
      if (last?.errorClass === 'UnrecoverableError') throw new AppError('not_found', 'this version is missing from storage');
      throw new AppError('unavailable', 'the storage worker could not read this version; try again');
    }
    return result.returnValue.contents_b64.map((c) => Buffer.from(c, 'base64'));
  }

  /**
   * Unified diff (or hunks) from `against` (another version id, or "previous") to `id`. Both versions
   * must belong to the same network device.
   */
  async diff(ctx: OrgContext, id: string, against: string, format: 'unified' | 'json') {
    const target = await this.get(ctx, id);
    let base: StoredBackup | undefined;
    if (against === 'previous') {
      base = await this.repo.previous(target);
      if (!base) throw new AppError('not_found', 'this is the first stored version of the device; there is no previous one');
    } else {
      base = await this.get(ctx, against);
      if (base.networkDeviceId !== target.networkDeviceId) throw new AppError('invalid_request', 'both versions must belong to the same network device');
    }
    if (base.size + target.size > DIFF_MAX_BYTES) {
      throw new AppError('invalid_request', `these versions are too large to diff here (${base.size + target.size} bytes; at most ${DIFF_MAX_BYTES}): download both and diff them locally`);
    }
    // Same device, so same location (a device never moves): both versions in one read.
    const [device, [a, b]] = await Promise.all([
      this.repo.findDevice(ctx.organizationId, target.networkDeviceId),
      this.#readForDiff(ctx, target.locationId, [base.storageRef, target.storageRef]),
    ]);
    const name = device ? `${device.group}/${device.name}` : target.networkDeviceId;
    // Loaded at the first diff: every command and server start would otherwise pay for ~20 modules (issue 12).
    const { createTwoFilesPatch, structuredPatch } = await import('diff');
    const oldText = a!.toString('utf8');
    const newText = b!.toString('utf8');
    const tooSlow = () => new AppError('invalid_request', `these versions differ too much to diff within ${DIFF_TIMEOUT_MS / 1000} s: download both and diff them locally`);
    if (format === 'json') {
      const patch = structuredPatch(name, name, oldText, newText, base.collectedAt, target.collectedAt, { timeout: DIFF_TIMEOUT_MS });
      if (!patch) throw tooSlow();
      return { from: base, to: target, hunks: patch.hunks as DiffHunk[] };
    }
    const unified = createTwoFilesPatch(`a/${name}`, `b/${name}`, oldText, newText, base.collectedAt, target.collectedAt, { timeout: DIFF_TIMEOUT_MS });
    if (unified === undefined) throw tooSlow();
    return { from: base, to: target, unified };
  }

  /**
   * A diff is interactive (issue 9: p99 ≤ 50 ms; Oxidized-web#212): when the location is on this host both
   * versions are read here, through the git plugin's long-lived cat-file; otherwise by a storage worker.
   */
  async #readForDiff(ctx: OrgContext, locationId: string, refs: string[]): Promise<Buffer[]> {
    if (this.localReads) {
      const location = await this.repo.findLocation(ctx.organizationId, locationId);
      if (!location) throw new AppError('not_found', 'the backup location of this version no longer exists');
      const local = await this.localReads(location.type, { organization_id: location.organizationId, ...location.config }, refs);
      if (local) return local;
    }
    return this.#read(ctx, locationId, refs);
  }
}

function decodeCursor(cursor: string): { collectedAt: string; id: string } {
  const text = /^[A-Za-z0-9_-]{1,400}$/.test(cursor) ? Buffer.from(cursor, 'base64url').toString('utf8') : '';
  const m = /^(\d{4}-\d\d-\d\dT[\d:.]+Z)\|([A-Za-z0-9_-]{1,64})$/.exec(text);
  if (!m) throw new AppError('invalid_request', 'cursor is not one this API handed out');
  return { collectedAt: m[1]!, id: m[2]! };
}
