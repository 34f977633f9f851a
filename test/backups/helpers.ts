import type { App } from '../../src/app.ts';
import { createUserWithKey, type TestUser } from '../helpers/test-app.ts';

export interface Caller {
  (method: string, url: string, body?: unknown, headers?: Record<string, string>): Promise<{ statusCode: number; json: () => any; body: string; headers: Record<string, unknown> }>;
}

/** An inject-based caller for one user, JSON bodies by default, raw Buffers/strings for pushes. */
export function callerFor(app: App, user: TestUser, defaultHeaders: Record<string, string> = {}): Caller {
  return async (method, url, body, headers = {}) => {
    const raw = Buffer.isBuffer(body) || typeof body === 'string';
    const res = await app.http.inject({
      method: method as 'GET',
      url,
      headers: { ...user.headers, ...defaultHeaders, ...(raw ? { 'content-type': 'text/plain' } : {}), ...headers },
      ...(body === undefined ? {} : raw ? { payload: body as string } : { payload: body as object }),
    });
    return { statusCode: res.statusCode, json: () => res.json(), body: res.body, headers: res.headers };
  };
}

/** Owner (org admin), a member of the owner's org, and an outsider with an org of their own. */
export async function orgWithUsers(app: App) {
  const owner = await createUserWithKey(app);
  const member = await createUserWithKey(app);
  const outsider = await createUserWithKey(app);
  const orgId = (await app.organizations.listForUser(owner.user.id))[0]!.organization.id;
  await app.organizations.listForUser(outsider.user.id);
  await app.organizations.setMember({ organizationId: orgId, userId: owner.user.id, role: 'admin' }, member.user.username, 'member');
  const h = { 'x-organization': orgId };
  return { orgId, owner, member, outsider, asOwner: callerFor(app, owner, h), asMember: callerFor(app, member, h), asOutsider: callerFor(app, outsider) };
}

/** Runs both pipeline consumers until nothing is left (immediate/database tasks run inline or by drain). */
export async function drainPipeline(app: App, drainTasks?: () => Promise<unknown>): Promise<void> {
  const c = app.backups.consumers();
  for (let i = 0; i < 5; i++) {
    const a = await c.deviceResults.drain();
    if (drainTasks) await drainTasks();
    const b = await c.storageResults.drain();
    if (a + b === 0) return;
  }
}
