/** What the store says about one file or folder, as the files module uses it. */
export interface FileEntry {
  isDirectory: boolean;
  size: number;
  /** Modification time, ms since epoch. */
  mtimeMs: number;
  /** Strong validator (quoted, as an HTTP ETag) of this exact version of a file; null for folders. */
  etag: string | null;
}

/** One row of the file index, as services see it. */
export interface FileRecord {
  id: number;
  ownerId: string;
  path: string;
  name: string;
  parentPath: string;
  size: number;
  contentType: string;
  isDirectory: boolean;
  /** Null for rows created by index reconciliation until someone asks for the hash (GET meta). */
  sha256: string | null;
  modifiedAt: string;
  createdAt: string;
  updatedAt: string;
}

/** Metadata of a file or folder as the API answers it (issue 2: GET /api/v1/meta). */
export interface FileMeta {
  path: string;
  name: string;
  size: number;
  content_type: string;
  is_directory: boolean;
  /** Files only; null for folders. */
  sha256: string | null;
  modified_at: string;
  created_at: string;
  /** The strong validator sent as ETag, for If-Match / If-None-Match. Null for folders. */
  etag: string | null;
}

export interface DirListing {
  path: string;
  entries: FileMeta[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  next_cursor: string | null;
}

export function toMeta(record: FileRecord, etag: string | null): FileMeta {
  return {
    path: record.path,
    name: record.name,
    size: record.size,
    content_type: record.contentType,
    is_directory: record.isDirectory,
    sha256: record.isDirectory ? null : record.sha256,
    modified_at: record.modifiedAt,
    created_at: record.createdAt,
    etag: record.isDirectory ? null : etag,
  };
}
