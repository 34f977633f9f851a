import { createHmac, randomUUID } from 'node:crypto';
import { constantTimeEqual } from './secrets.ts';

// Minimal HS256 JWT (RFC 7519) — we only ever verify tokens we signed ourselves, so the full JOSE
// surface (algorithm negotiation, key sets) would only add ways to get it wrong. `alg` is pinned.

export interface JwtClaims {
  sub: string;
  typ: 'access' | 'refresh';
  iat: number;
  exp: number;
  jti: string;
  [extra: string]: unknown;
}

const HEADER = Buffer.from(JSON.stringify({ alg: 'HS256', typ: 'JWT' })).toString('base64url');

function sign(input: string, secret: string): string {
  return createHmac('sha256', secret).update(input).digest('base64url');
}

export function signJwt(
  claims: Omit<JwtClaims, 'iat' | 'exp' | 'jti'> & { jti?: string },
  secret: string,
  ttlSeconds: number,
  now: Date,
): string {
  const iat = Math.floor(now.getTime() / 1000);
  const body: JwtClaims = { jti: randomUUID(), ...claims, iat, exp: iat + ttlSeconds } as JwtClaims;
  const payload = Buffer.from(JSON.stringify(body)).toString('base64url');
  const input = `${HEADER}.${payload}`;
  return `${input}.${sign(input, secret)}`;
}

/** Returns the claims of a valid, unexpired token we signed, or null. Never throws on bad input. */
export function verifyJwt(token: string, secret: string, now: Date): JwtClaims | null {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== HEADER) return null;
  const [header, payload, signature] = parts as [string, string, string];
  if (!constantTimeEqual(sign(`${header}.${payload}`, secret), signature)) return null;
  let claims: JwtClaims;
  try {
    claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as JwtClaims;
  } catch {
    return null;
  }
  if (typeof claims !== 'object' || claims === null || typeof claims.sub !== 'string') return null;
  if (typeof claims.exp !== 'number' || claims.exp <= Math.floor(now.getTime() / 1000)) return null;
  return claims;
}

export function looksLikeJwt(token: string): boolean {
  return token.startsWith(`${HEADER}.`);
}
