import { open } from 'node:fs/promises';

/**
 * A small file an operator names on the command line (a private key for `credentials add`), read whole
 * as UTF-8; refused past `maxBytes` so a wrong path (a disk image, /dev/zero) is not read into memory.
 */
export async function readUserFile(file: string, maxBytes = 64 * 1024): Promise<string> {
  const handle = await open(file, 'r');
  try {
    const buf = Buffer.alloc(maxBytes + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, size, buf.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > maxBytes) throw Object.assign(new Error(`larger than ${maxBytes} bytes`), { code: 'EFBIG' });
    }
    return buf.subarray(0, size).toString('utf8');
  } finally {
    await handle.close();
  }
}
