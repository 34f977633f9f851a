import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const BIN = path.resolve(import.meta.dirname, '../../bin/stormvault.js');

/**
 * The quick start as a user lives it: a fresh data dir, `stormvault serve`, the first-start admin and key
 * printed once, and real HTTP requests against the listening port.
 */
describe('stormvault serve (real process, real port)', () => {
  let dir: string;
  let child: ChildProcess;
  let base: string;
  const printed: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'sv-e2e-'));
    child = spawn(process.execPath, [BIN, 'serve'], {
      env: { ...process.env, STORMVAULT_DATA_DIR: dir, STORMVAULT_PORT: '0', STORMVAULT_MIN_FREE_BYTES: '0', STORMVAULT_BODY_LIMIT_BYTES: '4096' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const lines = createInterface({ input: child.stdout! });
    base = await new Promise<string>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`serve exited early with ${code}`)));
      lines.on('line', (line) => {
        printed.push(line);
        if (line.startsWith('{') && line.includes('"stormvault listening"')) resolve(JSON.parse(line).address);
      });
    });
  }, 60_000);

  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('prints the first admin and an API key once, and the key works', async () => {
    const keyLine = printed.find((l) => l.includes('API key:'));
    expect(keyLine).toBeDefined();
    const key = keyLine!.split(/\s+/).at(-1)!;
    const me = await fetch(`${base}/api/v1/users/me`, { headers: { authorization: `Bearer ${key}` } });
    expect(me.status).toBe(200);
    expect(await me.json()).toMatchObject({ username: 'admin', is_admin: true });

    const password = printed.find((l) => l.includes('password:'))!.split(/\s+/).at(-1)!;
    const login = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password }),
    });
    expect(login.status).toBe(200);
  });

  it('answers an oversized JSON body with 413 in the error envelope', async () => {
    const res = await fetch(`${base}/api/v1/auth/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username: 'admin', password: 'x'.repeat(10_000) }),
    });
    expect(res.status).toBe(413);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('shuts down cleanly on SIGTERM', async () => {
    child.kill('SIGTERM');
    const [code] = await once(child, 'exit');
    expect(code).toBe(0);
  });
});
