import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, createUserWithKey, type TestApp, type TestUser } from '../helpers/test-app.ts';

/** Issue 12: the router's own refusals answered Fastify's default body, echoing the whole URL. */
describe('router errors', () => {
  let t: TestApp;
  let user: TestUser;
  beforeAll(async () => {
    t = await createTestApp();
    user = await createUserWithKey(t.app);
  });
  afterAll(async () => {
    await t?.cleanup();
  });

  const expectEnvelope = (res: { statusCode: number; body: string; headers: Record<string, unknown>; json: () => any }, status: number, code: string, marker: string) => {
    expect(res.statusCode).toBe(status);
    const body = res.json();
    expect(Object.keys(body)).toEqual(['error']);
    expect(body.error).toMatchObject({ code, message: expect.any(String) });
    expect(body.error.request_id).toBeTruthy();
    expect(res.headers['x-request-id']).toBe(body.error.request_id);
    expect(res.body).not.toContain(marker);
  };

  it('a path parameter over the length limit is 414 in the error envelope, without the URL', async () => {
    const marker = 'q'.repeat(5000);
    for (const headers of [{}, user.headers]) {
      const res = await t.app.http.inject({ method: 'DELETE', url: `/api/v1/shares/${marker}`, headers });
      expectEnvelope(res, 414, 'uri_too_long', marker.slice(0, 50));
    }
  });

  it('a URL that is not valid percent-encoded UTF-8 is 400 invalid_request, without the URL', async () => {
    for (const url of ['/api/v1/files/%c0%ae', '/s/%c0%ae', '/api/v1/apikeys/%c0%ae%c0%ae-marker']) {
      const res = await t.app.http.inject({ method: 'GET', url, headers: user.headers });
      expectEnvelope(res, 400, 'invalid_request', '%c0%ae');
    }
  });

  it('an unknown route answers 404 without echoing a long URL back', async () => {
    const marker = 'z'.repeat(5000);
    const res = await t.app.http.inject({ method: 'GET', url: `/nope/${marker}` });
    expect(res.statusCode).toBe(404);
    expect(res.json().error.code).toBe('not_found');
    expect(res.body.length).toBeLessThan(400);
  });
});
