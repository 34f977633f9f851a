import { execFile } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDialects } from '../helpers/env.ts';
import { startDavServer, type DavServer } from './helpers.ts';
import { toolAvailable } from './tools.ts';

/**
 * Issue 13: litmus (the WebDAV conformance suite) against a real listening server, every suite, with
 * 0 failures and 0 warnings. Fails in CI when litmus is missing.
 */
const SUITES = ['basic', 'copymove', 'props', 'locks', 'http'];

function runLitmus(url: string, user: string, secret: string): Promise<string> {
  return new Promise((resolve) => {
    execFile('litmus', ['-k', url, user, secret], { env: { ...process.env, TESTS: SUITES.join(' ') }, timeout: 240_000, maxBuffer: 8 << 20 }, (_err, stdout, stderr) =>
      resolve(`${stdout}\n${stderr}`),
    );
  });
}

const HAVE_LITMUS = toolAvailable('litmus', ['--help']);

describe.runIf(HAVE_LITMUS).each(testDialects())('litmus against /dav/ on %s', (dialect) => {
  let s: DavServer;
  beforeAll(async () => {
    s = await startDavServer(dialect);
  });
  afterAll(async () => {
    await s?.cleanup();
  });

  // Basic with a password costs one scrypt per request: that run once, on SQLite; the API key on every dialect.
  it.each([
    ...(dialect === 'sqlite' ? [['a password', () => s.alice.password] as const] : []),
    ['an API key', () => s.alice.key] as const,
  ])('passes every suite with 0 failures and 0 warnings, logging in with %s', async (_what, secret) => {
    const out = await runLitmus(s.davUrl, s.alice.user.username, secret());
    for (const suite of SUITES) {
      const summary = new RegExp(`summary for \`${suite}': of (\\d+) tests run: (\\d+) passed, (\\d+) failed`).exec(out);
      expect(summary, `litmus ${suite} did not report a summary:\n${out}`).not.toBeNull();
      expect(Number(summary![3]), `litmus ${suite} failures:\n${out}`).toBe(0);
      expect(Number(summary![1])).toBeGreaterThan(0);
    }
    expect(out, out).not.toMatch(/WARNING/);
    expect(out).not.toMatch(/FAIL/);
  }, 300_000);
});
