import { mkdir, readdir, utimes, writeFile, lstat } from 'node:fs/promises';
import path from 'node:path';
import type { App } from '../../src/app.ts';
import { nameOf, parentOf } from '../../src/storage/safe-path.ts';

/** A moment well before any test run: files and rows that "drifted" long ago, never "in flight". */
export const OLD = new Date('2025-06-01T12:00:00.000Z');

export function userDir(app: App, userId: string): string {
  return path.join(app.config.storageRoot, userId);
}

/** Writes files (content by relative path) and folders (paths ending in '/') below a user's root. */
export async function writeTree(app: App, userId: string, files: Record<string, string>): Promise<void> {
  const root = userDir(app, userId);
  await mkdir(root, { recursive: true });
  for (const [rel, content] of Object.entries(files)) {
    const abs = path.join(root, rel);
    if (rel.endsWith('/')) await mkdir(abs, { recursive: true });
    else {
      await mkdir(path.dirname(abs), { recursive: true });
      await writeFile(abs, content);
    }
  }
  await ageTree(root);
}

/** Sets every mtime below `dir` (and of `dir`) to OLD, so nothing looks like an upload in flight. */
export async function ageTree(dir: string, when: Date = OLD): Promise<void> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const abs = path.join(dir, e.name);
    if (e.isDirectory()) await ageTree(abs, when);
    else if (e.isFile()) await utimes(abs, when, when);
  }
  await utimes(dir, when, when);
}

/** Inserts an index row directly (the index state a test starts from), as if written long ago. */
export async function insertRow(
  app: App,
  ownerId: string,
  rel: string,
  opts: { isDirectory?: boolean; size?: number; contentType?: string; modifiedAt?: string; updatedAt?: string; sha256?: string | null } = {},
): Promise<number> {
  const row = await app.db
    .insertInto('stored_files')
    .values({
      owner_id: ownerId,
      path: rel,
      name: nameOf(rel),
      parent_path: parentOf(rel),
      size: opts.size ?? 0,
      content_type: opts.contentType ?? (opts.isDirectory ? 'inode/directory' : 'application/octet-stream'),
      is_directory: opts.isDirectory ? 1 : 0,
      sha256: opts.sha256 ?? null,
      modified_at: opts.modifiedAt ?? OLD.toISOString(),
      created_at: opts.updatedAt ?? OLD.toISOString(),
      updated_at: opts.updatedAt ?? OLD.toISOString(),
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return Number(row.id);
}

export async function rowsOf(app: App, ownerId: string) {
  return app.db.selectFrom('stored_files').selectAll().where('owner_id', '=', ownerId).orderBy('path').execute();
}

export async function pathsOf(app: App, ownerId: string): Promise<string[]> {
  return (await rowsOf(app, ownerId)).map((r) => r.path);
}

export async function exists(p: string): Promise<boolean> {
  return lstat(p).then(
    () => true,
    () => false,
  );
}
