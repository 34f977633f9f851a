import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * Symmetric encryption of secrets kept at rest (S3 secret keys of publishing sites, webhook secrets,
 * backup credentials): AES-256-GCM with a random 96-bit nonce per value (NIST SP 800-38D §8.2.2) and the
 * row's identity as additional authenticated data, so a ciphertext copied onto another row or field does
 * not decrypt there. Stored form: `v1.<base64url nonce|tag|ciphertext>`. Pure: the key is handed in.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a secret key must be ${KEY_BYTES} bytes, got ${key.length}`);
    this.#key = Buffer.from(key);
  }

  /** Encrypts `plaintext`, bound to `context` (e.g. `pub_sites:<id>:s3_secret_access_key`). */
  seal(plaintext: string, context: string): string {
    const nonce = randomBytes(NONCE_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#key, nonce);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return `${VERSION}.${Buffer.concat([nonce, cipher.getAuthTag(), body]).toString('base64url')}`;
  }

  /** Decrypts what seal() produced for the same context; throws SecretBoxError on any mismatch. */
  open(sealed: string, context: string): string {
    const dot = sealed.indexOf('.');
    if (dot < 0 || sealed.slice(0, dot) !== VERSION) throw new SecretBoxError('unknown format');
    const raw = Buffer.from(sealed.slice(dot + 1), 'base64url');
    if (raw.length < NONCE_BYTES + TAG_BYTES) throw new SecretBoxError('truncated');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, NONCE_BYTES));
    decipher.setAAD(Buffer.from(context, 'utf8'));
    decipher.setAuthTag(raw.subarray(NONCE_BYTES, NONCE_BYTES + TAG_BYTES));
    try {
      return Buffer.concat([decipher.update(raw.subarray(NONCE_BYTES + TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch {
      throw new SecretBoxError('authentication failed (wrong key, or the value was moved or altered)');
    }
  }
}

export class SecretBoxError extends Error {
  constructor(why: string) {
    super(`cannot decrypt a stored secret: ${why}`);
    this.name = 'SecretBoxError';
  }
}

export const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const VERSION = 'v1';

/** A new random key in the text form parseSecretKey() reads (64 hex digits). */
export function newSecretKeyText(): string {
  return randomBytes(KEY_BYTES).toString('hex');
}

/**
 * The key from its text form: 64 hex digits or the base64/base64url of 32 bytes (what
 * STORMVAULT_SECRET_KEY and `<data dir>/secret-key` hold). Returns null for anything else.
 */
export function parseSecretKey(text: string): Buffer | null {
  const t = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(t)) return Buffer.from(t, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(t)) {
    const key = Buffer.from(t.replace(/\+/g, '-').replace(/\//g, '_').replace(/=$/, ''), 'base64url');
    return key.length === KEY_BYTES ? key : null;
  }
  return null;
}
