import type { Readable } from 'node:stream';

// The BlobStore port (issue 8, DESIGN.md "The core"): every capability that keeps bytes (files,
// publishing staging and mirror, fs backups) talks to storage through this interface and nothing else.
// Addresses are keys, never OS paths: '/'-separated, NFC, validated by storage/blob-key.ts (no '.', '..',
// empty or reserved segments, no control characters), so no caller can build a path that escapes the store.
// Adapters: storage/fs-blob-store.ts (a folder on local disk) and storage/s3-blob-store.ts (an S3 bucket).
// Both pass one conformance suite (test/storage/blob-store.conformance.ts).
//
// Errors are the classes below, never Node error codes: a service maps them to its AppError codes (and
// its own wording: a key such as `<user_id>/<path>` is an internal name a client should not see).

/** What a store knows about one key. */
export interface BlobStat {
  kind: 'file' | 'folder';
  /** Bytes of a file; 0 for a folder. */
  size: number;
  /** Last modification, ms since the epoch (fractional on fs). 0 when the store keeps no time for folders (s3). */
  mtimeMs: number;
  /**
   * Strong validator of this exact version of a file (opaque, no quotes; HTTP callers wrap it in quotes
   * for an ETag). Any change of content gives a new version; a commit always does. Null for folders.
   */
  version: string | null;
}

/** One child of a folder, as {@link BlobStore.list} returns it: its name (one key segment) and its stat. */
export interface ListedBlob extends BlobStat {
  name: string;
}

/** An inclusive byte range, as HTTP Range counts it: `{ start: 0, end: size - 1 }` is the whole file. */
export interface ByteRange {
  start: number;
  end: number;
}

/** A file opened for reading: its stat is taken from what is open, so what streams is what was described. */
export interface BlobReadHandle {
  /** The file as opened (kind is always 'file'). */
  readonly stat: BlobStat;
  /**
   * The bytes of `range` (default: the whole file) as a stream; call at most once. The handle is released
   * when the stream ends, fails or is destroyed. If the file changes underneath (s3: another version) the
   * stream fails instead of mixing versions. On fs, when piped into an HTTP response or socket it sends
   * from reused buffers (storage/file-body.ts).
   */
  stream(range?: ByteRange): Readable;
  /** Releases the handle without streaming (HEAD, 304, 416). Safe to call after stream() too. */
  close(): Promise<void>;
}

/** Options of {@link BlobStore.stage}. */
export interface StageOptions {
  /** Fails with LimitExceeded as soon as more bytes than this arrive (nothing is kept). Default: no limit. */
  maxBytes?: number;
  /**
   * Free-space floor in bytes, checked while the bytes arrive (not only before or after): the stage fails
   * with StorageFull, and keeps nothing, as soon as writing on would leave less than this free. Ignored
   * by stores that do not know their free space (see freeBytes()).
   */
  minFreeBytes?: number;
}

/**
 * Bytes fully received and made durable, not yet visible at any key. Exactly one of commit() or abort()
 * should follow; a process that dies in between leaves a temp entry that no listing or scan shows
 * (fs: a `.sv-tmp-*` file next to the key).
 */
export interface StagedBlob {
  /** The key given to stage(). */
  readonly key: string;
  /** Bytes received. */
  readonly size: number;
  /** sha256 of the bytes, lowercase hex, computed while they streamed in. */
  readonly sha256: string;
  /**
   * Makes the bytes visible at `to` (default: the staged key) in one atomic step, replacing a file there:
   * a reader sees the old content or the new, never a mix, and after a crash at any moment the key holds
   * one or the other (fs: temp → fsync → rename → fsync of the folder). `to` must lie in the folder of the
   * staged key (InvalidBlobKey otherwise), e.g. a name chosen from the sha256.
   * @returns the committed file's stat (its version is new).
   * @throws BlobConflict('is_folder') when a folder is at `to`; BlobNotFound when the folder of `to` was
   *   removed meanwhile (explicit-folder stores). After a failed commit the stage is aborted.
   */
  commit(to?: string): Promise<BlobStat>;
  /** Drops the staged bytes. Idempotent; a no-op after commit(). */
  abort(): Promise<void>;
}

/** One entry copied by {@link BlobStore.stageCopy}, relative to the copy's top ('' is the top itself). */
export interface CopiedEntry {
  /** '' for the top; otherwise a key relative to it ('sub/file.txt'). */
  rel: string;
  kind: 'file' | 'folder';
  size: number;
  mtimeMs: number;
}

/** A file or folder tree copied into a temp entry next to its destination, waiting for commit or abort. */
export interface StagedCopy {
  /** The destination key given to stageCopy(). */
  readonly key: string;
  /** What was copied, parents before children. */
  readonly entries: readonly CopiedEntry[];
  /**
   * Makes the copy visible at its key in one step (fs: a rename of the temp file or temp folder, then a
   * fsync of the parent). Replaces a file there; a folder at the key must be removed first.
   * @throws BlobConflict('is_folder' | 'not_folder') when the key holds a folder, or a file while a folder
   *   is being committed.
   */
  commit(): Promise<void>;
  /** Drops the copy. Idempotent; a no-op after commit(). */
  abort(): Promise<void>;
}

/**
 * Which rule an `invalid_name` entry of {@link BlobStore.scan} breaks, so a caller can report it in its
 * own words: `invalid_utf8` (the raw name is not UTF-8: see rawNameHex), `bad_segment` (control
 * character, backslash, `.`/`..`, longer than 255 bytes, not well-formed Unicode), `not_nfc`,
 * `name_collision` (scan option `nfc`: equal to another name of its folder after normalisation),
 * `too_deep` / `too_long` (the store's key limits, or the scan's `limits`).
 */
export type ScanSkipRule = 'invalid_utf8' | 'bad_segment' | 'not_nfc' | 'name_collision' | 'too_deep' | 'too_long';

/**
 * One entry of {@link BlobStore.scan}. `file` and `folder` are what the store serves. `skipped` entries
 * exist but are never served or descended into (so an index must not hold them); `unreadable` means what
 * is at or below `key` is unknown this time (an index must leave its rows alone, not drop them).
 * Temp entries of stages in flight are yielded only when the scan asks for them (`temps`).
 */
export type ScanEntry =
  | { kind: 'file'; key: string; size: number; mtimeMs: number }
  | { kind: 'folder'; key: string; size: 0; mtimeMs: number }
  | {
      kind: 'skipped';
      /** The name as found; it is not a valid key (lossy for invalid UTF-8: see rawNameHex). */
      key: string;
      /** symlink: never followed; special: fifo, socket, device; invalid_name: not a valid key (not NFC, control character, too long or deep, invalid UTF-8). */
      reason: 'symlink' | 'special' | 'invalid_name';
      /** For invalid_name: which rule the name breaks. */
      rule?: ScanSkipRule;
      detail: string;
      /** For a name that is not valid UTF-8: its raw bytes in hex, so it can be reported exactly. */
      rawNameHex?: string;
    }
  | {
      kind: 'unreadable';
      /** An entry that could not be stat-ed, or a folder whose listing failed (it then follows that folder's own entry, same key). */
      key: string;
      /** errno-style code (EACCES, EIO…) for the report. */
      code: string;
      detail: string;
    }
  | {
      /**
       * A temp entry of a stage in flight, or left behind by a process killed during one (only with the
       * scan option `temps`). `key` is its path below the store's root as found (its last segment has the
       * reserved temp prefix, so it is not a valid key); removeStaleTemp() takes it.
       */
      kind: 'temp';
      key: string;
      mtimeMs: number;
    };

/**
 * Options of {@link BlobStore.scan}, all off by default. They exist for reconciliation, which must see a
 * store as it is on disk rather than only what the store serves; stores whose keys are their names (s3)
 * have no temp entries, links or unnormalised names, and ignore them.
 */
export interface ScanOptions {
  /**
   * Yield a name that is not in NFC (macOS clients write NFD) under its NFC key instead of skipping it,
   * when the NFC form is a valid segment. Of two names of one folder equal after normalisation, the one
   * already in NFC is kept and the other skipped (`name_collision`).
   */
  nfc?: boolean;
  /** Also yield temp entries (kind `temp`), e.g. to count or sweep those left by a crash. */
  temps?: boolean;
  /**
   * Limits stricter than the store's, counted below the prefix: at most `depth` segments and `keyBytes`
   * UTF-8 bytes in the key relative to the prefix. Entries beyond are skipped (`too_deep`, `too_long`).
   */
  limits?: { depth: number; keyBytes: number };
  /** List at most this many levels below the prefix (1: its own entries only). Default: all. */
  levels?: number;
  /**
   * fs: the first segment of the prefix (a folder directly in the store's root) may be a symbolic link,
   * which is followed: an administrator's choice, e.g. a user's folder on another volume. Links anywhere
   * else are never followed.
   */
  followLink?: boolean;
}

/**
 * A store of byte blobs addressed by keys. Keys are validated by every method (storage/blob-key.ts
 * builds them: `blobKey()`); a malformed one fails with InvalidBlobKey and touches nothing.
 *
 * Folders: on a store with `folders: 'explicit'` (fs) folders are entries of their own, may be empty, and
 * must exist before something is staged or moved into them (ensureFolder). On `folders: 'implied'` (s3)
 * a folder exists exactly while a key lies below it; ensureFolder creates nothing.
 */
export interface BlobStore {
  /** How this store treats folders (see the interface comment). */
  readonly folders: 'explicit' | 'implied';

  /**
   * What is at `key` ('' is the store's root), or null when nothing is. `followLink` (fs): a symbolic
   * link in the key's first segment is followed (see ScanOptions.followLink); never one further down.
   * @throws InvalidBlobKey('symlink' | 'outside_root' | 'not_regular') when the key goes through, or
   *   names, something the store never serves (fs: a symbolic link, a fifo…); BlobConflict('not_folder')
   *   when a parent of `key` is a file.
   */
  stat(key: string, options?: { followLink?: boolean }): Promise<BlobStat | null>;

  /**
   * Opens a file for reading (fs: O_NOFOLLOW, never through a link).
   * @throws BlobNotFound when nothing is at `key`; BlobConflict('is_folder') when it is a folder; as stat().
   */
  open(key: string): Promise<BlobReadHandle>;

  /**
   * Streams `source` into a staged blob next to `key`, counting bytes and computing the sha256 as they
   * arrive, in constant memory (backpressure on the source). Nothing is visible at `key` until commit().
   * The source is only read, never destroyed by the store, so an HTTP caller can still answer the client.
   * On any failure the partial bytes are removed before the promise rejects.
   * @throws LimitExceeded (more than `maxBytes`), StorageFull (the `minFreeBytes` floor, or the disk, ran
   *   out), UploadAborted (the source errored or closed before its end), BlobNotFound (the folder of `key`
   *   does not exist on an explicit-folder store).
   */
  stage(key: string, source: Readable, options?: StageOptions): Promise<StagedBlob>;

  /**
   * Copies the file or folder tree at `from` into a staged entry for `to` (whose folder must exist).
   * Links, special files and temp entries inside the tree are left out, never followed. Data is durable
   * before this resolves.
   * @throws BlobNotFound when nothing is at `from`; StorageFull when the disk ran out.
   */
  stageCopy(from: string, to: string): Promise<StagedCopy>;

  /**
   * Creates the folder `key` and any missing parents, never through a link. Returns the keys it created,
   * outermost first, so a caller that gives up can undo exactly those (removeEmptyFolders). Implied-folder
   * stores create nothing and return [].
   * @throws BlobConflict('not_folder') when `key` or a parent is a file; InvalidBlobKey('symlink') for a link.
   */
  ensureFolder(key: string): Promise<string[]>;

  /** Removes the given folders, innermost first, each only while it is still empty (undo of ensureFolder). Never throws. */
  removeEmptyFolders(keys: readonly string[]): Promise<void>;

  /** True when the folder `key` holds anything, temp entries of stages in flight included. False when it does not exist. */
  hasEntries(key: string): Promise<boolean>;

  /**
   * Removes the file or the whole folder tree at `key` (links inside are removed, never followed). Durable
   * when it resolves (fs: the parent folder is fsynced). Resolves also when nothing is there.
   */
  remove(key: string): Promise<void>;

  /**
   * Renames `from` to `to`, replacing a file at `to`. fs: one atomic rename (same volume), both folders
   * fsynced. s3: copy then delete, per object (a crash in the middle leaves both; never neither).
   * @throws BlobNotFound when nothing is at `from` (or, explicit folders, the folder of `to` is missing);
   *   BlobConflict('is_folder') when a folder is at `to`, or ('exists') when `from` is a folder and `to` exists.
   */
  move(from: string, to: string): Promise<void>;

  /**
   * The direct children of the folder `key` ('' = the store's root), each with its stat as stat() would
   * give it (version included), in no particular order: one listing for a whole folder, where a stat per
   * child would cost a round trip (fs: a lstat per path segment) each (WebDAV PROPFIND Depth 1, issue 13).
   * What scan() would report as skipped or unreadable, and temp entries of stages in flight, are left out.
   * Empty when nothing is at `key` or it is a file. Never follows links.
   * @throws InvalidBlobKey / BlobConflict for a bad key, as stat().
   */
  list(key: string): Promise<ListedBlob[]>;

  /**
   * Everything below `prefix` ('' = the whole store; not `prefix` itself), in byte order of the keys'
   * UTF-8 (compareKeys in blob-key.ts; the order of SQLite's BINARY and PostgreSQL's COLLATE "C"), so a
   * reconciler can merge it with an index sorted the same way. Keys ascend strictly, except that an
   * `unreadable` entry for a folder follows that folder's own entry. Nothing is yielded when `prefix` is
   * missing or a file. Yields batches (arrays, possibly empty) rather than single entries: a scan of a
   * million files must keep pace with `find`, and one await per entry would cost more than the syscalls.
   * Never follows links (but see `options.followLink`). Entries changing during the scan may or may not
   * be seen. Temp entries are yielded only with `options.temps`, and their keys are not keys (see ScanEntry).
   * @throws InvalidBlobKey / BlobConflict for a bad prefix, as stat().
   */
  scan(prefix: string, options?: ScanOptions): AsyncIterable<readonly ScanEntry[]>;

  /**
   * Removes a temp entry that a scan with `temps` yielded, if it is a file still unmodified since
   * `staleBeforeMs` (checked again just before the removal, so a stage that resumed writing keeps it).
   * Returns whether it removed it; false too when it cannot tell (gone, unreadable). Stores with temp
   * entries (fs) have it; the others have none to remove.
   */
  removeStaleTemp?(tempKey: string, staleBeforeMs: number): Promise<boolean>;

  /** Bytes still available to this process where the store knows it (fs: statfs of the root), else null. */
  freeBytes(): Promise<number | null>;
}

// ------------------------------------------------------------------------------------------------ errors

/** Base of every error a BlobStore throws on purpose. `key` is the key involved, when there is one. */
export abstract class BlobStoreError extends Error {
  constructor(
    message: string,
    readonly key?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** Nothing is at the key (or at a folder a write needs). */
export class BlobNotFound extends BlobStoreError {
  constructor(key: string, options?: { cause?: unknown }) {
    super(`nothing at ${JSON.stringify(key)}`, key, options);
  }
}

/** Why an operation collides with what is at a key. */
export type BlobConflictReason = 'is_folder' | 'not_folder' | 'exists' | 'not_empty';

/** What is at the key (or a parent of it) is not what the operation needs. */
export class BlobConflict extends BlobStoreError {
  constructor(
    key: string,
    readonly reason: BlobConflictReason,
    options?: { cause?: unknown },
  ) {
    super(`${JSON.stringify(key)}: ${reason.replace('_', ' ')}`, key, options);
  }
}

/** Why a key is refused. `malformed`: fails the key rules; the others are found on the store itself. */
export type InvalidKeyReason = 'malformed' | 'symlink' | 'outside_root' | 'not_regular' | 'too_long';

/** The key is malformed, or leads to something the store never serves (a link, a device, out of the root). */
export class InvalidBlobKey extends BlobStoreError {
  constructor(
    key: string,
    readonly reason: InvalidKeyReason,
    readonly detail: string,
  ) {
    super(`invalid key ${JSON.stringify(key.length > 120 ? `${key.slice(0, 120)}…` : key)}: ${detail}`, key);
  }
}

/** No room: the free-space floor was reached or the device/quota is full (ENOSPC, EDQUOT). Nothing was kept. */
export class StorageFull extends BlobStoreError {
  constructor(detail: string, options?: { cause?: unknown }) {
    super(`storage full: ${detail}`, undefined, options);
  }
}

/** The source stream failed or closed before its end. Nothing was kept. */
export class UploadAborted extends BlobStoreError {
  constructor(options?: { cause?: unknown }) {
    super('the upload was interrupted before the whole body arrived', undefined, options);
  }
}

/** More bytes than the stage's `maxBytes` arrived. Nothing was kept. */
export class LimitExceeded extends BlobStoreError {
  constructor(readonly limit: number) {
    super(`more than ${limit} bytes`);
  }
}
