import { createHash, randomUUID } from 'node:crypto';
import { AppError } from '../../errors.ts';
import { resolveLocationFolder } from '../../storage/backup-plugins/backup-folder.ts';
import type { BackupStoragePlugin, PluginConfig, ScannedVersion } from '../../storage/backup-plugins/plugin.ts';
import type { StorageBackend } from '../../storage/backup-plugins/storage-tasks.ts';
import type { IndexedRow, IndexSide, Partition, PlanContext, ReconcileError, ScanEntry, StaleChange, StoredEntry } from '../../storage/reconcile/reconcile.types.ts';
import type { BackupsRepository } from './backups.repository.ts';
import type { BackupLocation, StoredBackup } from './backups.types.ts';

/** `rebuild-index --scope backups [--org ID]`: every location, or those of one organization. */
export interface BackupsFilter {
  organizationId: string | undefined;
}

/** A stored_backups row as the engine merges it: key = storage ref; `id` is a per-run number the engine needs. */
interface BackupIndexRow extends IndexedRow {
  backup: StoredBackup;
}

/** A version found in storage, as the engine merges it: key = storage ref. */
interface BackupEntry extends StoredEntry {
  version: ScannedVersion;
  deviceId: string;
}

const PAGE = 1000;
const LOCK_NAME = 'index_sync_backups';

/**
 * The backups capability's side of the reconciliation engine (issue 9: "the index is rebuildable"): one
 * partition per backup location; the storage scan is the location's versions (git: the branch's history
 * with its `Collected-At:`/`Task-Identifier:` trailers; fs: the `<group>/<device>/<collected_at>.cfg`
 * files), the index scan its `stored_backups` rows, both sorted by storage ref. A rebuilt git row keeps
 * the collection time and task identifier it was stored with; an fs row (or a commit another tool made)
 * gets a task identifier derived from its location and ref, so running a rebuild twice adds nothing.
 * Versions of a `<group>/<device>` no network device of the location has are reported, not indexed
 * (create the device, then run again: how an Oxidized repository is taken over, docs/backups.md).
 */
export class BackupsIndexSide implements IndexSide<BackupIndexRow, BackupsFilter> {
  readonly scope = 'backups';
  readonly lockName = LOCK_NAME;

  constructor(
    private readonly repo: BackupsRepository,
    private readonly plugins: Record<StorageBackend, BackupStoragePlugin>,
    private readonly backupsRoot: string,
  ) {}

  async validate(raw: unknown): Promise<BackupsFilter> {
    const f = (raw ?? {}) as { userId?: unknown; path?: unknown; organizationId?: unknown };
    if ((f.userId !== undefined && f.userId !== '') || (f.path !== undefined && f.path !== '')) {
      throw new AppError('invalid_request', 'a user id and a path apply to the files scope; the backups scope takes an organization id');
    }
    if (f.organizationId === undefined || f.organizationId === '') return { organizationId: undefined };
    if (typeof f.organizationId !== 'string' || !/^[A-Za-z0-9_-]{1,64}$/.test(f.organizationId)) throw new AppError('invalid_request', 'organization id is not one');
    if (!(await this.repo.organizationsWithLocations()).includes(f.organizationId)) {
      throw new AppError('not_found', `organization ${JSON.stringify(f.organizationId)} has no backup locations`);
    }
    return { organizationId: f.organizationId };
  }

  isWholeScope(filter: BackupsFilter): boolean {
    return filter.organizationId === undefined;
  }

  async plan(ctx: PlanContext<BackupsFilter>): Promise<Array<Partition<BackupIndexRow>>> {
    const locations = ctx.filter.organizationId ? await this.repo.listLocations(ctx.filter.organizationId) : await this.repo.allLocations();
    const partitions: Array<Partition<BackupIndexRow>> = [];
    // Checked for every location before anything changes: a missing repository with rows looks like an
    // unmounted volume, and clean/full would wipe its history from the index (as the files scope refuses).
    for (const location of locations) {
      const label = `${location.organizationId}/${location.config.folder}`;
      let folder: string;
      try {
        folder = await resolveLocationFolder(this.backupsRoot, location.organizationId, location.config.folder);
      } catch (err) {
        if (!(err instanceof AppError)) throw err;
        partitions.push(skipped(label, { path: label, code: err.code, message: err.message }));
        continue;
      }
      const plugin = this.plugins[location.type];
      const config: PluginConfig = { ...location.config, folder };
      if (!(await plugin.locationExists(config)) && (await this.repo.hasRowsAt(location.id))) {
        const message = `the ${location.type === 'git' ? 'repository' : 'folder'} of location "${location.name}" is missing but the index holds versions of it (is the backups volume mounted?)`;
        if (ctx.destructive) throw new AppError('conflict', `${message}: refusing to ${ctx.mode}; nothing was done`);
        partitions.push(skipped(label, { path: label, code: 'location_missing', message: `${message}; its rows were not compared` }));
        continue;
      }
      const devices = new Map((await this.repo.devicesAt(location.organizationId, location.id)).map((d) => [`${d.group}/${d.name}`, d.id] as const));
      partitions.push(this.partition(location, label, plugin, config, devices));
    }
    return partitions;
  }

  private partition(location: BackupLocation, label: string, plugin: BackupStoragePlugin, config: PluginConfig, devices: Map<string, string>): Partition<BackupIndexRow> {
    const repo = this.repo;
    const rowOf = (() => {
      let n = 0;
      return (backup: StoredBackup): BackupIndexRow => ({ id: ++n, key: backup.storageRef, kind: 'file', backup });
    })();
    const fingerprints = async (entries: StoredEntry[]) => plugin.fingerprints(entries.map((e) => e.key), config);
    return {
      label,
      storage: () => this.scan(plugin, config, devices),
      index: () => this.rows(location.id, rowOf),
      staleFields: (row, entry) => {
        const e = entry as BackupEntry;
        const fields: string[] = [];
        if (row.backup.size !== e.size) fields.push('size');
        if (row.backup.collectedAt !== e.version.collectedAt.toISOString()) fields.push('collected_at');
        return fields;
      },
      indexedNow: (keys) => repo.refsIndexed(location.id, keys),
      insert: async (entries, nowIso) => {
        const fp = await fingerprints(entries);
        const rows: StoredBackup[] = [];
        for (const entry of entries as BackupEntry[]) {
          const f = fp.get(entry.key);
          if (!f) continue; // gone since the scan
          rows.push({
            id: randomUUID(),
            organizationId: location.organizationId,
            networkDeviceId: entry.deviceId,
            locationId: location.id,
            storageRef: entry.key,
            sha256: f.sha256,
            size: f.size,
            collectedAt: entry.version.collectedAt.toISOString(),
            storedAt: nowIso,
            taskIdentifier: entry.version.taskIdentifier ?? derivedTaskIdentifier(location.id, entry.key),
          });
        }
        return repo.insertBackups(rows);
      },
      versions: async (rows) => {
        const stamps = await repo.rowStamps(rows.map((r) => r.backup.id));
        const out = new Map<number, { key: string; updatedAtMs: number; moving: boolean }>();
        for (const r of rows) {
          const s = stamps.get(r.backup.id);
          if (s) out.set(r.id, { key: s.storageRef, updatedAtMs: Date.parse(s.storedAt), moving: false });
        }
        return out;
      },
      update: async (changes: Array<StaleChange<BackupIndexRow>>, unchangedSince) => {
        const fp = await fingerprints(changes.map((c) => c.entry));
        const rows = changes.flatMap((c) => {
          const f = fp.get(c.entry.key);
          return f ? [{ id: c.row.backup.id, sha256: f.sha256, size: f.size, collectedAt: (c.entry as BackupEntry).version.collectedAt.toISOString() }] : [];
        });
        return repo.updateBackups(rows, unchangedSince);
      },
      storedNow: (key) => plugin.hasVersion(key, config),
      // No rule protects a row whose version is gone from storage: the repository is the truth.
      protectedIds: async () => new Set<number>(),
      remove: (rows, unchangedSince) => repo.deleteBackupsUnchanged(rows.map((r) => r.backup.id), unchangedSince),
    };
  }

  /** The plugin's sorted scan; versions of paths no device of the location has become one problem per path. */
  private async *scan(plugin: BackupStoragePlugin, config: PluginConfig, devices: Map<string, string>): AsyncGenerator<ScanEntry[]> {
    const reported = new Set<string>();
    for await (const page of plugin.scanVersions(config)) {
      const out: ScanEntry[] = [];
      for (const v of page) {
        if (v.kind === 'problem') {
          out.push({ key: v.key, kind: 'problem', code: v.code, message: v.message, unreadable: v.unreadable });
          continue;
        }
        const deviceId = devices.get(v.relPath);
        if (deviceId === undefined) {
          if (!reported.has(v.relPath)) {
            reported.add(v.relPath);
            out.push({ key: v.relPath, kind: 'problem', code: 'unknown_device', message: 'no network device of this location has this group and name: its versions are not indexed (add the device, then run again)', unreadable: false });
          }
          continue;
        }
        const entry: BackupEntry = { key: v.storageRef, kind: 'file', size: v.size, mtimeMs: v.storedAtMs, version: v, deviceId };
        out.push(entry);
      }
      if (out.length > 0) yield out;
    }
  }

  private async *rows(locationId: string, rowOf: (b: StoredBackup) => BackupIndexRow): AsyncGenerator<BackupIndexRow[]> {
    let after: string | null = null;
    for (;;) {
      const page = await this.repo.rowsByRef(locationId, after, PAGE);
      if (page.length > 0) yield page.map(rowOf);
      if (page.length < PAGE) return;
      after = page[page.length - 1]!.storageRef;
    }
  }
}

function skipped(label: string, skip: ReconcileError): Partition<BackupIndexRow> {
  const none = async function* () {};
  return {
    label,
    skip,
    storage: none,
    index: none,
    staleFields: () => [],
    indexedNow: async () => new Set(),
    insert: async () => 0,
    versions: async () => new Map(),
    update: async () => 0,
    storedNow: async () => undefined,
    protectedIds: async () => new Set(),
    remove: async () => 0,
  };
}

/** A stable task identifier (UUID-shaped) for a version stored without one: the same on every rebuild. */
export function derivedTaskIdentifier(locationId: string, storageRef: string): string {
  const h = createHash('sha256').update(`stormvault-backup\0${locationId}\0${storageRef}`).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-5${h.slice(13, 16)}-${((parseInt(h[16]!, 16) & 3) | 8).toString(16)}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}
