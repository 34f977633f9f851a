import { createRequire } from 'node:module';
import type mimeTypes from 'mime-types';

// Pure: content type of a stored file by its name's extension. The disk is the source of truth and holds
// no content type, so the type must be derivable from the name alone: uploads and index reconciliation
// both call contentTypeFor and therefore always agree. (Sniffing bytes would make the two disagree.)
// The extension table is mime-types' (mime-db, issue 12); when it changes between versions, the next
// index audit reports the affected rows as stale and `sync` updates them.

/**
 * mime-types, loaded on the first lookup: loading it parses mime-db's whole table (~200 KB of JSON), which
 * a command that looks up no type (an audit that finds nothing new, `--help`) need not pay for (issue 12,
 * CLI start-up).
 */
let mime: typeof mimeTypes | undefined;
const mimeTypesPackage = () => (mime ??= createRequire(import.meta.url)('mime-types') as typeof mimeTypes);

/** Content type recorded for folders. */
export const DIRECTORY_CONTENT_TYPE = 'inode/directory';
export const DEFAULT_CONTENT_TYPE = 'application/octet-stream';

/**
 * Where a file server knows better than mime-db: `.ts` there is MPEG transport stream, which would make
 * browsers offer to play TypeScript sources as video.
 */
const OVERRIDES: Record<string, string> = { ts: 'text/plain; charset=utf-8' };

/**
 * Content type for a file name (a bare name or a path: only the last segment counts), case-insensitive on
 * the extension. Unknown or missing extensions, and dotfiles such as ".bashrc", give
 * application/octet-stream. Text types carry `charset=utf-8`. Folders are not files: use
 * DIRECTORY_CONTENT_TYPE for them.
 */
export function contentTypeFor(fileName: string): string {
  const name = fileName.slice(fileName.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  if (dot <= 0 || dot === name.length - 1) return DEFAULT_CONTENT_TYPE;
  const ext = name.slice(dot + 1).toLowerCase();
  // Only the extension goes to mime-types: lookup() would take a name without a dot ("png") for one.
  const type = Object.hasOwn(OVERRIDES, ext) ? OVERRIDES[ext]! : mimeTypesPackage().lookup(ext);
  if (type === false) return DEFAULT_CONTENT_TYPE;
  return type.startsWith('text/') && !type.includes(';') ? `${type}; charset=utf-8` : type;
}
