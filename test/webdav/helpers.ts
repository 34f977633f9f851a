import type { AddressInfo } from 'node:net';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';
import type { TestDialect } from '../helpers/env.ts';

export interface DavServer {
  t: TestApp;
  base: string;
  /** `http://host:port/dav/` */
  davUrl: string;
  alice: TestUser & { password: string };
  bob: TestUser & { password: string };
  basic(user: { user: { username: string } }, secret: string): string;
  cleanup(): Promise<void>;
}

/** A real app listening on a random local port, with two users who have passwords and API keys. */
export async function startDavServer(dialect: TestDialect = 'sqlite', env: Record<string, string> = {}): Promise<DavServer> {
  const t = await createTestApp({ dialect, env: { STORMVAULT_HOST: '127.0.0.1', STORMVAULT_PORT: '0', ...env } });
  const alicePassword = 'alice-password-1';
  const bobPassword = 'bob-password-1';
  const alice = { ...(await createUserWithKey(t.app, { password: alicePassword })), password: alicePassword };
  const bob = { ...(await createUserWithKey(t.app, { password: bobPassword })), password: bobPassword };
  await t.app.http.listen({ host: '127.0.0.1', port: 0 });
  const { port } = t.app.http.server.address() as AddressInfo;
  const base = `http://127.0.0.1:${port}`;
  return {
    t,
    base,
    davUrl: `${base}/dav/`,
    alice,
    bob,
    basic: (u, secret) => `Basic ${Buffer.from(`${u.user.username}:${secret}`).toString('base64')}`,
    cleanup: () => t.cleanup(),
  };
}
