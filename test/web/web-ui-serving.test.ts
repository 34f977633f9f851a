import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildWeb } from '../../scripts/build.mjs';
import { createTestApp, type TestApp } from '../helpers/test-app.ts';

/** Issue 14: the built UI at `/`, hashed assets cached for good, index.html never, a strict CSP. */
describe('web UI serving', () => {
  let t: TestApp;
  let none: TestApp;
  let webDir: string;
  let built: { script: string; style: string | null };

  beforeAll(async () => {
    webDir = await mkdtemp(path.join(tmpdir(), 'sv-web-'));
    built = await buildWeb({ outdir: webDir });
    t = await createTestApp({ appOptions: { webRoot: webDir } });
    none = await createTestApp({ appOptions: { webRoot: null } });
  });
  afterAll(async () => {
    await t?.cleanup();
    await none?.cleanup();
    await rm(webDir, { recursive: true, force: true });
  });

  it('serves index.html at / without caching, with a CSP that allows no inline script and no other origin', async () => {
    const res = await t.app.http.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.headers['cache-control']).toBe('no-cache');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(csp).not.toContain('unsafe-eval');
    expect(csp).not.toMatch(/https?:/);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    // Every script is an external file of this origin: no inline code for the CSP to have to allow.
    const scripts = [...res.body.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts.length).toBeGreaterThan(0);
    for (const [, attrs, body] of scripts) {
      expect(body!.trim()).toBe('');
      expect(attrs).toMatch(/src="\/[^/]/);
    }
    expect(res.body).toContain(`/${built.script}`);
    expect(res.body).not.toMatch(/(src|href)="(https?:)?\/\//);
  });

  it('serves hashed assets with a year-long immutable cache', async () => {
    for (const name of [built.script, built.style!]) {
      const res = await t.app.http.inject({ method: 'GET', url: `/${name}` });
      expect(res.statusCode, name).toBe(200);
      expect(res.headers['cache-control']).toBe('public, max-age=31536000, immutable');
    }
    const chunks = await readdir(path.join(webDir, 'chunks'));
    const chunk = chunks.find((c) => c.endsWith('.js'))!;
    const res = await t.app.http.inject({ method: 'GET', url: `/chunks/${chunk}` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.headers['cache-control']).toContain('immutable');
  });

  it('leaves the API alone: unknown paths are still the JSON 404, API answers carry no UI CSP', async () => {
    const missing = await t.app.http.inject({ method: 'GET', url: '/no-such-file.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json().error.code).toBe('not_found');
    const api = await t.app.http.inject({ method: 'GET', url: '/api/v1/users/me' });
    expect(api.statusCode).toBe(401);
    expect(api.headers['content-security-policy']).toBeUndefined();
  });

  it('without a build, / says how to build it', async () => {
    const res = await none.app.http.inject({ method: 'GET', url: '/' });
    expect(res.statusCode).toBe(503);
    expect(res.body).toContain('npm run build');
  });
});
