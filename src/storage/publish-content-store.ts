import { createHash } from 'node:crypto';
import { link, rename, unlink } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fsyncDir, tempPathFor } from './atomic.ts';
import { blobKey, parentKey } from './blob-key.ts';
import { BlobNotFound, type BlobReadHandle, type BlobStat, type StagedBlob, type StageOptions } from './blob-store.port.ts';
import type { FsBlobStore } from './fs-blob-store.ts';

/** Suffix of the one previous version kept next to each published file (issue 11 "Writing"). */
export const PREV_SUFFIX = '.prev';

/** Points where a crash test may kill the writer (see test/publishing/atomic-write.test.ts). */
export type WriteStep = 'staged' | 'prev-linked' | 'prev-renamed' | 'renamed';

/** A write staged next to its target: bytes durable, nothing visible yet. */
export interface StagedContent {
  readonly blob: StagedBlob;
  /** Folders stage() created for it (removed again if the write is given up). */
  readonly createdFolders: readonly string[];
}

/**
 * The local content of published sites, keys `<site>/<path>` in an fs BlobStore rooted at the publish
 * root: the truth the bucket mirrors. What this adds to the store is the write order that keeps one whole
 * previous version at `<path>.prev` without the path ever going missing:
 *
 *   stage (temp, fsync) → link current → temp name → rename over `.prev` → rename temp over path → fsync folder
 *
 * A hard link rather than renaming the current file away: between two renames a reader would get a 404,
 * and a crash there would leave no file at the path. With the link the path holds the old version until
 * the final rename and the new one after it; `.prev` is replaced by a rename, so it is always whole. The
 * port has no link operation, so this one step works on the store's paths directly, after the store has
 * checked the key (no links followed, nothing outside the root).
 */
export class PublishContentStore {
  constructor(readonly blobs: FsBlobStore) {}

  get root(): string {
    return this.blobs.root;
  }

  private abs(key: string): string {
    return path.join(this.blobs.root, ...key.split('/'));
  }

  stat(site: string, rel: string): Promise<BlobStat | null> {
    return this.blobs.stat(blobKey(site, rel));
  }

  /** Opens a file; null when there is none. */
  async open(site: string, rel: string): Promise<BlobReadHandle | null> {
    try {
      return await this.blobs.open(blobKey(site, rel));
    } catch (err) {
      if (err instanceof BlobNotFound) return null;
      throw err;
    }
  }

  async freeBytes(): Promise<number> {
    return (await this.blobs.freeBytes()) ?? Number.MAX_SAFE_INTEGER;
  }

  /** sha256 and stat of a file, streamed; null when there is none. */
  async hashFile(site: string, rel: string): Promise<{ sha256: string; stat: BlobStat } | null> {
    const handle = await this.open(site, rel);
    if (!handle) return null;
    const hash = createHash('sha256');
    await pipeline(handle.stream(), hash);
    return { sha256: hash.digest('hex'), stat: handle.stat };
  }

  /** Streams `body` into a staged blob next to `rel`, creating missing folders (see StageOptions for limits). */
  async stage(site: string, rel: string, body: Readable, options: StageOptions): Promise<StagedContent> {
    const key = blobKey(site, rel);
    // The common case first: the folder is there (a rewrite), which the stage itself checks (no links,
    // inside the root) before it reads a byte. Walking it with ensureFolder too would cost a mkdir and an
    // lstat per level on every write. Only when it is missing, and nothing was read yet, create it.
    try {
      return { blob: await this.blobs.stage(key, body, options), createdFolders: [] };
    } catch (err) {
      if (!(err instanceof BlobNotFound) || body.readableDidRead) throw err;
    }
    const createdFolders = await this.blobs.ensureFolder(parentKey(key));
    try {
      return { blob: await this.blobs.stage(key, body, options), createdFolders };
    } catch (err) {
      await this.blobs.removeEmptyFolders(createdFolders);
      throw err;
    }
  }

  async discard(staged: StagedContent): Promise<void> {
    await staged.blob.abort();
    await this.blobs.removeEmptyFolders(staged.createdFolders);
  }

  /** Puts a staged file at its key, keeping the file it replaces as `.prev` (see the class comment). */
  async commitKeepingPrev(staged: StagedContent, onStep?: (step: WriteStep) => Promise<void> | void): Promise<BlobStat> {
    await onStep?.('staged');
    const key = staged.blob.key;
    const current = await this.blobs.stat(key);
    if (current?.kind === 'file') {
      const abs = this.abs(key);
      const tmp = tempPathFor(abs);
      await link(abs, tmp);
      await onStep?.('prev-linked');
      try {
        await rename(tmp, abs + PREV_SUFFIX);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw err;
      }
      await onStep?.('prev-renamed');
    }
    const stat = await staged.blob.commit(); // rename over the path, fsync of the folder
    await onStep?.('renamed');
    return stat;
  }

  /**
   * Swaps `rel` and `rel.prev` (rollback): link current → temp, rename `.prev` over the path, rename the
   * temp over `.prev`, fsync. The path is never missing; a crash leaves at worst a temp file.
   * @returns false when there is no `.prev`.
   */
  async swapWithPrev(site: string, rel: string): Promise<boolean> {
    const key = blobKey(site, rel);
    const prevKey = key + PREV_SUFFIX;
    const [current, prev] = [await this.blobs.stat(key), await this.blobs.stat(prevKey)];
    if (prev?.kind !== 'file' || current?.kind === 'folder') return false;
    const [abs, prevAbs] = [this.abs(key), this.abs(prevKey)];
    if (!current) {
      await rename(prevAbs, abs);
    } else {
      const tmp = tempPathFor(abs);
      await link(abs, tmp);
      await rename(prevAbs, abs);
      await rename(tmp, prevAbs);
    }
    await fsyncDir(path.dirname(abs));
    return true;
  }

  /** Removes `rel` and its `.prev`, then every folder left empty up to (not including) the site's folder. */
  async removeFile(site: string, rel: string): Promise<void> {
    const key = blobKey(site, rel);
    await this.blobs.remove(key + PREV_SUFFIX);
    await this.blobs.remove(key);
    await this.pruneEmptyParents(site, key);
  }

  /** Removes a folder with everything in it (every `.prev` too), then empty parents. */
  async removeTree(site: string, rel: string): Promise<void> {
    const key = blobKey(site, rel);
    await this.blobs.remove(key);
    await this.pruneEmptyParents(site, key);
  }

  /** Paths of every file below `rel` ('' = the whole site), `.prev` files left out, in byte order. */
  async listFiles(site: string, rel: string): Promise<string[]> {
    const prefix = blobKey(site, rel);
    const out: string[] = [];
    for await (const batch of this.blobs.scan(prefix)) {
      for (const e of batch) if (e.kind === 'file' && !e.key.endsWith(PREV_SUFFIX)) out.push(e.key.slice(site.length + 1));
    }
    return out;
  }

  /** Makes sure the site's folder exists (it is never pruned). */
  async ensureSite(site: string): Promise<void> {
    await this.blobs.ensureFolder(blobKey(site));
  }

  /** Removes the site's folder with everything in it (site deletion). */
  async removeSite(site: string): Promise<void> {
    await this.blobs.remove(blobKey(site));
  }

  private async pruneEmptyParents(site: string, key: string): Promise<void> {
    const parents: string[] = [];
    for (let k = parentKey(key); k !== site && k !== ''; k = parentKey(k)) parents.unshift(k);
    // Outermost first, as ensureFolder returns them; each is removed only while empty, innermost first.
    await this.blobs.removeEmptyFolders(parents);
  }
}
