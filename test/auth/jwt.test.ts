import { SignJWT } from 'jose';
import { describe, expect, it } from 'vitest';
import { signJwt, verifyJwt } from '../../src/modules/auth/jwt.ts';

const secret = 's'.repeat(40);
const now = new Date(Date.UTC(2026, 5, 1));
const iat = Math.floor(now.getTime() / 1000);
const key = new TextEncoder().encode(secret);

describe('access JWTs (jose, HS256 pinned)', () => {
  it('round-trips our own tokens until they expire', async () => {
    const token = await signJwt({ sub: 'u1', typ: 'access' }, secret, 900, now);
    expect(await verifyJwt(token, secret, now)).toMatchObject({ sub: 'u1', typ: 'access', iat, exp: iat + 900 });
    expect(await verifyJwt(token, secret, new Date(now.getTime() + 900_000))).toBeNull();
    expect(await verifyJwt(token, 'x'.repeat(40), now)).toBeNull();
  });

  it('accepts any well-formed HS256 token signed with the secret (header field order, no typ)', async () => {
    const token = await new SignJWT({ typ: 'access' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u2').setIssuedAt(iat).setExpirationTime(iat + 60).sign(key);
    expect(await verifyJwt(token, secret, now)).toMatchObject({ sub: 'u2' });
  });

  it('refuses other algorithms, alg none, missing claims and garbage', async () => {
    const hs512 = await new SignJWT({ typ: 'access' }).setProtectedHeader({ alg: 'HS512' }).setSubject('u3').setExpirationTime(iat + 60).sign(key);
    expect(await verifyJwt(hs512, secret, now)).toBeNull();
    const b64 = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
    expect(await verifyJwt(`${b64({ alg: 'none', typ: 'JWT' })}.${b64({ sub: 'u4', exp: iat + 60 })}.`, secret, now)).toBeNull();
    const noExp = await new SignJWT({ typ: 'access' }).setProtectedHeader({ alg: 'HS256' }).setSubject('u5').sign(key);
    expect(await verifyJwt(noExp, secret, now)).toBeNull();
    for (const junk of ['', 'a.b.c', 'eyJ.eyJ.', '....']) expect(await verifyJwt(junk, secret, now)).toBeNull();
  });
});
