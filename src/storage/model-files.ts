import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Reads the `*.json` files of one folder (device models, issue 10), sorted by name so the load order is
 * the same on every host. A missing folder has no files: `<data dir>/models/` is optional.
 * Files larger than `maxBytes` are refused: a model is a few KiB of JSON.
 */
export async function readJsonFiles(dir: string, maxBytes = 1024 * 1024): Promise<{ file: string; text: string }[]> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  const out: { file: string; text: string }[] = [];
  for (const name of names) {
    const file = path.join(dir, name);
    const buf = await readFile(file);
    if (buf.length > maxBytes) throw new Error(`model ${file}: larger than ${maxBytes} bytes`);
    out.push({ file, text: buf.toString('utf8') });
  }
  return out;
}
