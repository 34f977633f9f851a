import { lineFilter } from '../../lib/line-patterns.ts';
import { GitBackupRepository } from '../git/git-backup-repository.ts';
import type { BackupStoragePlugin, PluginConfig, StoreMeta, StoreOutcome } from './plugin.ts';

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
  };
}
