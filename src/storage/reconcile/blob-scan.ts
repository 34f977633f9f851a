import type { ScanEntry as BlobScanEntry } from '../blob-store.port.ts';
import type { ScanEntry } from './reconcile.types.ts';

/**
 * A BlobStore's `scan(prefix)` as the engine's storage scan: the same order (keys ascending in UTF-8 byte
 * order) and the same batching, so this only renames. Keys become relative to `prefix` (a partition is
 * one prefix: a backup repository, a publishing site). `special` entries (FIFOs, sockets, devices) are
 * dropped silently, as the files scope does; symlinks and invalid names are reported; `unreadable`
 * entries protect the rows at and below them. Backups and publishing plug their index sides in with it.
 */
export async function* fromBlobScan(scan: AsyncIterable<readonly BlobScanEntry[]>, prefix: string): AsyncGenerator<ScanEntry[]> {
  const cut = prefix === '' ? 0 : prefix.length + 1;
  const rel = (key: string) => (key === prefix ? '' : key.slice(cut));
  for await (const batch of scan) {
    const out: ScanEntry[] = [];
    for (const e of batch) {
      switch (e.kind) {
        case 'file':
          out.push({ key: rel(e.key), kind: 'file', size: e.size, mtimeMs: e.mtimeMs });
          break;
        case 'folder':
          out.push({ key: rel(e.key), kind: 'dir', size: 0, mtimeMs: e.mtimeMs });
          break;
        case 'skipped':
          if (e.reason === 'special') break;
          out.push({ key: rel(e.key), kind: 'problem', code: e.reason, message: e.detail, unreadable: false });
          break;
        case 'unreadable':
          out.push({ key: rel(e.key), kind: 'problem', code: e.code, message: e.detail, unreadable: true });
          break;
      }
    }
    if (out.length > 0) yield out;
  }
}
