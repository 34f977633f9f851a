import { createHash } from 'node:crypto';
import { access } from 'node:fs/promises';
import path from 'node:path';
import { lineFilter } from '../../lib/line-patterns.ts';
import { GitBackupRepository, parseGitStorageRef } from '../git/git-backup-repository.ts';
import { sortByKey } from '../reconcile/key-order.ts';
import type { BackupStoragePlugin, PluginConfig, ScanIssue, ScannedVersion, StoreMeta, StoreOutcome } from './plugin.ts';

const SCAN_PAGE = 1000;

/**
 * The git storage plugin: one bare repository per location folder. One repository object per folder per
 * plugin, so stores of one process queue up instead of racing each other's compare-and-swap.
 */
export function gitStoragePlugin(): BackupStoragePlugin {
  const repos = new Map<string, GitBackupRepository>();
  const repoFor = (config: PluginConfig) => {
    const key = `${config.folder}\0${config.branch ?? 'main'}`;
    let repo = repos.get(key);
    if (!repo) repos.set(key, (repo = new GitBackupRepository({ gitDir: config.folder, branch: config.branch ?? 'main' })));
    return repo;
  };
  return {
    backend: 'git',
    async storeBackup(content: Buffer, relPath: string, config: PluginConfig, meta: StoreMeta): Promise<StoreOutcome> {
      const ignore = meta.ignorePatterns.length ? lineFilter(meta.ignorePatterns) : null;
      return repoFor(config).store({
        relPath,
        content,
        collectedAt: meta.collectedAt,
        taskIdentifier: meta.taskIdentifier,
        author: { name: config.author_name ?? 'Stormvault', email: config.author_email ?? 'stormvault@localhost' },
        sameContent: ignore ? (a, b) => ignore.apply(a.toString('utf8')) === ignore.apply(b.toString('utf8')) : undefined,
      });
    },
    async maintain(config: PluginConfig): Promise<{ removed: string[] }> {
      await repoFor(config).maintain();
      return { removed: [] };
    },
    async readBackup(storageRef: string, config: PluginConfig): Promise<Buffer> {
      return repoFor(config).readBuffer(storageRef);
    },
    async locationExists(config: PluginConfig): Promise<boolean> {
      return access(path.join(config.folder, 'HEAD')).then(
        () => true,
        () => false,
      );
    },
    /**
     * One `git log --raw` of the branch, then one `cat-file --batch-check` for the sizes. The versions are
     * sorted in memory (git lists them by date, the index by ref): about 200 bytes per version, so 100,000
     * versions of a repository cost some 20 MB for the length of its scan.
     */
    async *scanVersions(config: PluginConfig) {
      const repo = repoFor(config);
      const found: Array<{ storageRef: string; relPath: string; collectedAt: Date; taskIdentifier: string | null; blob: string; storedAtMs: number }> = [];
      const issues: ScanIssue[] = [];
      const badPaths = new Set<string>();
      // Committer times have whole seconds: +999 ms so a commit of the last second counts as in flight.
      for await (const v of repo.history()) {
        if (!v.valid) {
          if (!badPaths.has(v.relPath)) {
            badPaths.add(v.relPath);
            issues.push({ kind: 'problem', key: v.relPath, code: 'invalid_name', message: 'not a <group>/<device> path: never indexed', unreadable: false });
          }
          continue;
        }
        found.push({ storageRef: v.storageRef, relPath: v.relPath, collectedAt: v.collectedAt, taskIdentifier: v.taskIdentifier, blob: v.blob, storedAtMs: v.committedAt.getTime() + 999 });
      }
      if (issues.length > 0) yield issues;
      const sizes = await repo.objectSizes([...new Set(found.map((f) => f.blob))]);
      sortByKey(found, (f) => f.storageRef);
      for (let i = 0; i < found.length; i += SCAN_PAGE) {
        yield found.slice(i, i + SCAN_PAGE).map(
          (f): ScannedVersion => ({
            kind: 'version',
            storageRef: f.storageRef,
            relPath: f.relPath,
            collectedAt: f.collectedAt,
            taskIdentifier: f.taskIdentifier,
            size: sizes.get(f.blob) ?? 0,
            storedAtMs: f.storedAtMs,
          }),
        );
      }
    },
    async fingerprints(storageRefs: readonly string[], config: PluginConfig) {
      const repo = repoFor(config);
      const out = new Map<string, { sha256: string; size: number }>();
      for (const storageRef of storageRefs) {
        const ref = parseGitStorageRef(storageRef);
        if (!ref) continue;
        const content = await repo.readObject(`${ref.commit}:${ref.relPath}`);
        if (content !== null) out.set(storageRef, { sha256: createHash('sha256').update(content).digest('hex'), size: content.length });
      }
      return out;
    },
    async hasVersion(storageRef: string, config: PluginConfig) {
      return repoFor(config).contains(storageRef);
    },
    async close() {
      const all = [...repos.values()];
      repos.clear();
      await Promise.all(all.map((r) => r.close()));
    },
  };
}
