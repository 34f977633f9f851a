import type { Readable } from 'node:stream';

/**
 * A versioned store of network-device configurations (issue 9): one file per device at
 * `<group>/<device>`, every change a new version, each version addressed by an opaque storage ref.
 * DESIGN.md keeps it apart from BlobStore: its unit is a *version in a history*, not a blob under a key.
 * The git adapter (storage/git/git-backup-repository.ts) is the one implementation; the fs backend stores
 * versions as blobs through BlobStore instead.
 */
export interface BackupRepository {
  /**
   * Stores `content` as the newest version of `relPath` unless it equals the current version (by bytes,
   * or by `sameContent` when given: issue 9's ignore_patterns). Safe to call from many processes at once
   * for the same repository: no version is lost, the repository stays consistent.
   * @throws Error('invalid backup path') when relPath is not `<segment>/<segment>` of safe characters.
   */
  store(input: StoreVersionInput): Promise<StoredVersion>;

  /**
   * The content of one version as a stream, with its size.
   * @throws BackupVersionNotFound when the ref is malformed or names no version of this repository.
   */
  read(storageRef: string): Promise<{ size: number; stream: Readable }>;

  /**
   * Every version stored, newest first (all paths, or one path), streamed: the history is read lazily,
   * so memory does not grow with its length. For index rebuilds, never for serving history pages.
   */
  history(relPath?: string): AsyncIterable<VersionInfo>;
}

export interface StoreVersionInput {
  /** `<group>/<device>`. */
  readonly relPath: string;
  readonly content: Buffer;
  /** When the configuration was collected; the version's date (git: the author date). */
  readonly collectedAt: Date;
  readonly author: { readonly name: string; readonly email: string };
  /** Recorded with the version, so an index rebuilt from storage keeps it. */
  readonly taskIdentifier?: string;
  /** Decides "unchanged" when the bytes differ (e.g. only ignored lines changed). Default: bytes equal. */
  readonly sameContent?: (previous: Buffer, next: Buffer) => boolean;
}

export interface StoredVersion {
  /** Opaque address of the version now current for the path (the new one, or the unchanged old one). */
  readonly storageRef: string;
  readonly sha256: string;
  readonly size: number;
  /** False when nothing was written because the content was unchanged. */
  readonly changed: boolean;
}

export interface VersionInfo {
  readonly storageRef: string;
  readonly relPath: string;
  /** False when the path is not `<group>/<device>` (a file some other tool committed): never indexed. */
  readonly valid: boolean;
  readonly collectedAt: Date;
  readonly taskIdentifier: string | null;
  /** The content's object id (git: the blob). */
  readonly blob: string;
  /** When the version was written to storage (git: the committer date). */
  readonly committedAt: Date;
}

/** The ref is malformed or names no stored version. */
export class BackupVersionNotFound extends Error {
  constructor(ref: string) {
    super(`no stored version ${JSON.stringify(ref.slice(0, 300))}`);
    this.name = 'BackupVersionNotFound';
  }
}

/** `<group>/<device>`: both segments 1–128 of [A-Za-z0-9._-], neither "." nor "..". */
export const BACKUP_SEGMENT_RE = /^(?!\.\.?$)[A-Za-z0-9._-]{1,128}$/;

export function isBackupRelPath(relPath: string): boolean {
  const parts = typeof relPath === 'string' ? relPath.split('/') : [];
  return parts.length === 2 && parts.every((p) => BACKUP_SEGMENT_RE.test(p));
}
