import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { lineFilter } from '../../lib/line-patterns.ts';
import { BlobNotFound, InvalidBlobKey, type BlobStore } from '../blob-store.port.ts';
import { BackupVersionNotFound, isBackupRelPath } from '../backup-repository.port.ts';
import { FsBlobStore } from '../fs-blob-store.ts';
import type { BackupStoragePlugin, PluginConfig, ScanIssue, ScannedVersion, StoreMeta, StoreOutcome } from './plugin.ts';

// `<group>/<device>/<collected_at UTC, ms>.cfg`, e.g. core/r1/20260301T100000.123Z.cfg (issue 9). The
// compact form sorts by time and needs no ':' in a file name.
const VERSION_RE = /^\d{8}T\d{6}\.\d{3}Z(?:-\d+)?\.cfg$/;

/** The collection time a version file's name records (`20260301T100000.123Z.cfg` → 2026-03-01T10:00:00.123Z). */
export function collectedAtOfVersion(name: string): Date | null {
  const m = /^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)\.(\d{3})Z(?:-\d+)?\.cfg$/.exec(name);
  if (!m) return null;
  const d = new Date(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}.${m[7]}Z`);
  return Number.isNaN(d.getTime()) ? null : d;
}

export function versionFileName(collectedAt: Date, n = 0): string {
  const iso = collectedAt.toISOString().replace(/[-:]/g, '');
  return `${iso}${n ? `-${n}` : ''}.cfg`;
}

/** Order of version file names: collection time, then the same-millisecond suffix ("…Z.cfg" < "…Z-1.cfg"). */
export function compareVersionKeys(a: string, b: string): number {
  const parse = (k: string) => {
    const name = k.slice(k.lastIndexOf('/') + 1);
    const m = /^(.{20})(?:-(\d+))?\.cfg$/.exec(name);
    return [m?.[1] ?? name, Number(m?.[2] ?? 0)] as const;
  };
  const [at, an] = parse(a);
  const [bt, bn] = parse(b);
  return at < bt ? -1 : at > bt ? 1 : an - bn;
}

/**
 * The fs storage plugin: each version is a file under the location folder, written atomically through
 * the BlobStore fs adapter (stage → fsync → rename → fsync of the folder), so a crash leaves the old set of
 * versions or the new one. Unchanged content (bytes, or all but the ignore_patterns lines) writes nothing.
 * The storage ref is the version's key.
 */
export function fsStoragePlugin(): BackupStoragePlugin {
  const stores = new Map<string, BlobStore>();
  const storeFor = (config: PluginConfig) => {
    let s = stores.get(config.folder);
    if (!s) stores.set(config.folder, (s = new FsBlobStore(config.folder)));
    return s;
  };

  async function latest(store: BlobStore, relPath: string): Promise<string | null> {
    let last: string | null = null;
    if (!(await store.stat(relPath).catch(() => null))) return null;
    for await (const batch of store.scan(relPath)) {
      for (const e of batch) {
        if (e.kind === 'file' && e.key.split('/').length === 3 && VERSION_RE.test(e.key.split('/')[2]!) && (last === null || compareVersionKeys(e.key, last) > 0)) last = e.key;
      }
    }
    return last;
  }

  async function readKey(store: BlobStore, key: string): Promise<Buffer> {
    const handle = await store.open(key);
    try {
      return await buffer(handle.stream());
    } finally {
      await handle.close();
    }
  }

  const plugin: BackupStoragePlugin = {
    backend: 'fs',
    async storeBackup(content: Buffer, relPath: string, config: PluginConfig, meta: StoreMeta): Promise<StoreOutcome> {
      if (!isBackupRelPath(relPath)) throw new Error(`invalid backup path ${JSON.stringify(relPath)}`);
      // The location's folder (confined by the host) is created on first use, like a git repository.
      await mkdir(config.folder, { recursive: true });
      const store = storeFor(config);
      const sha256 = createHash('sha256').update(content).digest('hex');
      const current = await latest(store, relPath);
      if (current) {
        const previous = await readKey(store, current);
        const ignore = meta.ignorePatterns.length ? lineFilter(meta.ignorePatterns) : null;
        const same = previous.equals(content) || (ignore !== null && ignore.apply(previous.toString('utf8')) === ignore.apply(content.toString('utf8')));
        if (same) return { storageRef: current, sha256: createHash('sha256').update(previous).digest('hex'), size: previous.length, changed: false };
      }
      const [group] = relPath.split('/');
      await store.ensureFolder(group!);
      await store.ensureFolder(relPath);
      // Two versions collected in the same millisecond get a suffix instead of replacing each other.
      let key = `${relPath}/${versionFileName(meta.collectedAt)}`;
      for (let n = 1; await store.stat(key); n++) key = `${relPath}/${versionFileName(meta.collectedAt, n)}`;
      const staged = await store.stage(key, Readable.from([content]));
      await staged.commit();
      return { storageRef: key, sha256, size: content.length, changed: true };
    },
    async maintain(config: PluginConfig, now: Date): Promise<{ removed: string[] }> {
      const keepVersions = config.keep_versions ?? null;
      const keepDays = config.keep_days ?? null;
      if (keepVersions === null && keepDays === null) return { removed: [] };
      await mkdir(config.folder, { recursive: true });
      const store = storeFor(config);
      // Versions per device folder, oldest first (the names sort by collection time).
      const byDevice = new Map<string, string[]>();
      for await (const batch of store.scan('')) {
        for (const e of batch) {
          const parts = e.key.split('/');
          if (e.kind !== 'file' || parts.length !== 3 || !VERSION_RE.test(parts[2]!)) continue;
          const dev = `${parts[0]}/${parts[1]}`;
          const list = byDevice.get(dev) ?? [];
          list.push(e.key);
          byDevice.set(dev, list);
        }
      }
      const cutoff = keepDays === null ? null : versionFileName(new Date(now.getTime() - keepDays * 86_400_000));
      const removed: string[] = [];
      for (const keys of byDevice.values()) {
        keys.sort(compareVersionKeys);
        const newest = keys.length - 1;
        for (const [i, key] of keys.entries()) {
          if (i === newest) break; // a device always keeps its newest version
          const tooMany = keepVersions !== null && i < keys.length - keepVersions;
          const tooOld = cutoff !== null && key.split('/')[2]! < cutoff;
          if (tooMany || tooOld) {
            await store.remove(key);
            removed.push(key);
          }
        }
      }
      return { removed };
    },
    async locationExists(config: PluginConfig): Promise<boolean> {
      return stat(config.folder).then(
        (st) => st.isDirectory(),
        () => false,
      );
    },
    /** The BlobStore's sorted scan, streamed: a version's storage ref is its key, so the order is the scan's. */
    async *scanVersions(config: PluginConfig) {
      if (!(await plugin.locationExists(config))) return;
      for await (const batch of storeFor(config).scan('')) {
        const out: Array<ScannedVersion | ScanIssue> = [];
        for (const e of batch) {
          const parts = e.key.split('/');
          if (e.kind === 'folder') {
            if (parts.length > 2) out.push({ kind: 'problem', key: e.key, code: 'not_a_version', message: 'folder below a device folder: not indexed', unreadable: false });
            continue;
          }
          if (e.kind === 'skipped') {
            if (e.reason !== 'special') out.push({ kind: 'problem', key: e.key, code: e.reason, message: e.detail, unreadable: false });
            continue;
          }
          if (e.kind === 'unreadable') {
            out.push({ kind: 'problem', key: e.key, code: e.code, message: e.detail, unreadable: true });
            continue;
          }
          // Only yielded with the scan option `temps`, which this scan does not ask for.
          if (e.kind === 'temp') continue;
          const relPath = parts.length === 3 ? `${parts[0]}/${parts[1]}` : '';
          const collectedAt = parts.length === 3 && VERSION_RE.test(parts[2]!) ? collectedAtOfVersion(parts[2]!) : null;
          if (!collectedAt || !isBackupRelPath(relPath)) {
            out.push({ kind: 'problem', key: e.key, code: 'not_a_version', message: 'not <group>/<device>/<collected_at>.cfg: not indexed', unreadable: false });
            continue;
          }
          out.push({ kind: 'version', storageRef: e.key, relPath, collectedAt, taskIdentifier: null, size: e.size, storedAtMs: e.mtimeMs });
        }
        if (out.length > 0) yield out;
      }
    },
    async fingerprints(storageRefs: readonly string[], config: PluginConfig) {
      const out = new Map<string, { sha256: string; size: number }>();
      for (const ref of storageRefs) {
        const content = await plugin.readBackup(ref, config).catch((err) => {
          if (err instanceof BackupVersionNotFound) return null;
          throw err;
        });
        if (content !== null) out.set(ref, { sha256: createHash('sha256').update(content).digest('hex'), size: content.length });
      }
      return out;
    },
    async hasVersion(storageRef: string, config: PluginConfig) {
      try {
        return (await storeFor(config).stat(storageRef)) !== null;
      } catch (err) {
        if (err instanceof InvalidBlobKey) return false;
        return undefined;
      }
    },
    async close() {},
    async readBackup(storageRef: string, config: PluginConfig): Promise<Buffer> {
      const parts = storageRef.split('/');
      if (parts.length !== 3 || !isBackupRelPath(`${parts[0]}/${parts[1]}`) || !VERSION_RE.test(parts[2]!)) throw new BackupVersionNotFound(storageRef);
      try {
        return await readKey(storeFor(config), storageRef);
      } catch (err) {
        if (err instanceof BlobNotFound || err instanceof InvalidBlobKey) throw new BackupVersionNotFound(storageRef);
        throw err;
      }
    },
  };
  return plugin;
}
