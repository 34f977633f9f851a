import { randomUUID } from 'node:crypto';
import { SignJWT, jwtVerify } from 'jose';

// Access tokens are HS256 JWTs (RFC 7519) signed and checked by `jose` (issue 12: token parsing is not
// ours to get wrong). The algorithm is pinned on both sides: verification accepts HS256 only, so a token
// claiming `alg: none` or an asymmetric algorithm is refused whatever its signature says.

const ALG = 'HS256';

export interface JwtClaims {
  sub: string;
  typ: 'access' | 'refresh';
  iat: number;
  exp: number;
  jti: string;
  [extra: string]: unknown;
}

function keyOf(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

export async function signJwt(
  claims: Omit<JwtClaims, 'iat' | 'exp' | 'jti'> & { jti?: string },
  secret: string,
  ttlSeconds: number,
  now: Date,
): Promise<string> {
  const iat = Math.floor(now.getTime() / 1000);
  const { jti, ...rest } = claims;
  return new SignJWT(rest)
    .setProtectedHeader({ alg: ALG, typ: 'JWT' })
    .setJti(jti ?? randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttlSeconds)
    .sign(keyOf(secret));
}

/** The claims of a valid, unexpired token we signed, or null. Never throws on bad input. */
export async function verifyJwt(token: string, secret: string, now: Date): Promise<JwtClaims | null> {
  try {
    const { payload } = await jwtVerify(token, keyOf(secret), { algorithms: [ALG], currentDate: now, requiredClaims: ['sub', 'exp'] });
    return typeof payload.sub === 'string' ? (payload as JwtClaims) : null;
  } catch {
    return null;
  }
}
