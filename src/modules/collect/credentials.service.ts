import { randomUUID } from 'node:crypto';
// ssh2 is CommonJS: Node's ESM loader (dist/ leaves ssh2 external) finds no named export `utils` in it.
import ssh2 from 'ssh2';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import type { SecretBox } from '../../lib/secret-box.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { CollectRepository, CredentialWrite } from './collect.repository.ts';
import type { Credential, CredentialSecrets } from './collect.types.ts';
import type { CollectCredential } from './collector.port.ts';

const FIELDS = ['name', 'username', 'password', 'private_key', 'passphrase', 'enable_password'] as const;
const SECRET_FIELDS = ['password', 'private_key', 'passphrase', 'enable_password'] as const;
const bad = (m: string) => new AppError('invalid_request', m);
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;
/** AAD of the sealed secrets: a ciphertext copied onto another credential row does not open there. */
export const credentialSecretsContext = (id: string) => `collect_credentials:${id}:secrets`;

/**
 * Credentials of network devices (issue 10): org admins only, even for reading. Secrets are sealed with
 * AES-256-GCM at rest (src/lib/secret-box.ts) and write-only: no answer, log line or error message
 * carries them, only `has_password` / `has_private_key` / `has_enable_password`.
 */
export class CredentialsService {
  constructor(
    private readonly repo: CollectRepository,
    private readonly secrets: SecretBox,
    private readonly clock: Clock,
    /** How many devices use a credential (backups' service): one in use is not deleted. */
    private readonly devicesUsing: (organizationId: string, credentialId: string) => Promise<number>,
  ) {}

  #requireAdmin(ctx: OrgContext): void {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'credentials are managed by the admins of the organization');
  }

  async list(ctx: OrgContext): Promise<Credential[]> {
    this.#requireAdmin(ctx);
    return this.repo.listCredentials(ctx.organizationId);
  }

  async get(ctx: OrgContext, id: string): Promise<Credential> {
    this.#requireAdmin(ctx);
    const c = typeof id === 'string' && id.length <= 64 ? await this.repo.findCredential(ctx.organizationId, id) : undefined;
    if (!c) throw new AppError('not_found', 'no such credential');
    return c;
  }

  async create(ctx: OrgContext, body: unknown): Promise<Credential> {
    this.#requireAdmin(ctx);
    const id = randomUUID();
    const w = this.#parse(id, body, null);
    if (await this.repo.findCredentialByName(ctx.organizationId, w.name)) throw new AppError('already_exists', `a credential named "${w.name}" exists`);
    try {
      await this.repo.insertCredential(id, ctx.organizationId, w, this.clock.now().toISOString());
    } catch (err) {
      if (await this.repo.findCredentialByName(ctx.organizationId, w.name)) throw new AppError('already_exists', `a credential named "${w.name}" exists`);
      throw err;
    }
    return this.get(ctx, id);
  }

  /** Changes the given fields; a secret field set to null is removed, one left out is kept. */
  async update(ctx: OrgContext, id: string, body: unknown): Promise<Credential> {
    const current = await this.get(ctx, id);
    const sealed = await this.repo.credentialSecrets(ctx.organizationId, id);
    const previous = JSON.parse(this.secrets.open(sealed!.secretsEnc, credentialSecretsContext(id))) as CredentialSecrets;
    const w = this.#parse(id, body, { credential: current, secrets: previous });
    if (w.name !== current.name && (await this.repo.findCredentialByName(ctx.organizationId, w.name))) throw new AppError('already_exists', `a credential named "${w.name}" exists`);
    await this.repo.updateCredential(ctx.organizationId, id, w, this.clock.now().toISOString());
    return this.get(ctx, id);
  }

  async delete(ctx: OrgContext, id: string): Promise<void> {
    await this.get(ctx, id);
    const n = await this.devicesUsing(ctx.organizationId, id);
    if (n > 0) throw new AppError('conflict', `the credential is used by ${n} network device(s); change them first`);
    await this.repo.deleteCredential(ctx.organizationId, id);
  }

  /** Whether the organization has this credential (device validation); no secret is opened. */
  async exists(organizationId: string, id: string): Promise<boolean> {
    return Boolean(await this.repo.findCredential(organizationId, id));
  }

  async findByName(organizationId: string, name: string): Promise<Credential | undefined> {
    return this.repo.findCredentialByName(organizationId, name);
  }

  /** The decrypted login, for the length of one collection (the collect service only). */
  async open(organizationId: string, id: string): Promise<CollectCredential | undefined> {
    const sealed = await this.repo.credentialSecrets(organizationId, id);
    if (!sealed) return undefined;
    const s = JSON.parse(this.secrets.open(sealed.secretsEnc, credentialSecretsContext(id))) as CredentialSecrets;
    return {
      username: sealed.credential.username,
      ...(s.password !== undefined ? { password: s.password } : {}),
      ...(s.private_key !== undefined ? { privateKey: s.private_key } : {}),
      ...(s.passphrase !== undefined ? { passphrase: s.passphrase } : {}),
      ...(s.enable_password !== undefined ? { enablePassword: s.enable_password } : {}),
    };
  }

  #parse(id: string, body: unknown, current: { credential: Credential; secrets: CredentialSecrets } | null): CredentialWrite {
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw bad('credential must be a JSON object');
    const b = body as Record<string, unknown>;
    const unknown = Object.keys(b).filter((k) => !(FIELDS as readonly string[]).includes(k));
    if (unknown.length) throw bad(`credential: unknown field(s) ${unknown.join(', ')}; allowed: ${FIELDS.join(', ')}`);
    const name = b.name === undefined && current ? current.credential.name : b.name;
    if (typeof name !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(name)) throw bad('name must be 1-128 characters of A-Z a-z 0-9 . _ -');
    const username = b.username === undefined && current ? current.credential.username : b.username;
    if (typeof username !== 'string' || username === '' || username.length > 128 || CONTROL.test(username)) throw bad('username must be 1-128 characters without control characters');
    const secrets: CredentialSecrets = { ...current?.secrets };
    for (const f of SECRET_FIELDS) {
      const v = b[f];
      if (v === undefined) continue;
      if (v === null) {
        delete secrets[f];
        continue;
      }
      // The message names the field, never the value.
      const max = f === 'private_key' ? 16_384 : 1024;
      if (typeof v !== 'string' || v === '' || v.length > max) throw bad(`${f} must be a non-empty string of at most ${max} characters, or null`);
      if (f !== 'private_key' && /[\r\n\0]/.test(v)) throw bad(`${f} must be one line`);
      secrets[f] = v;
    }
    if (secrets.password === undefined && secrets.private_key === undefined) throw bad('a credential needs a password or a private_key');
    if (secrets.passphrase !== undefined && secrets.private_key === undefined) throw bad('passphrase applies to a private_key only');
    if (secrets.private_key !== undefined) {
      const parsed = ssh2.utils.parseKey(secrets.private_key, secrets.passphrase);
      const key = Array.isArray(parsed) ? parsed[0] : parsed;
      if (!key || key instanceof Error) throw bad('private_key is not an OpenSSH/PEM private key this server can read (or the passphrase is wrong)');
      if (!key.isPrivateKey()) throw bad('private_key holds a public key; give the private key');
    }
    return {
      name,
      username,
      secretsEnc: this.secrets.seal(JSON.stringify(secrets), credentialSecretsContext(id)),
      hasPassword: secrets.password !== undefined,
      hasPrivateKey: secrets.private_key !== undefined,
      hasEnablePassword: secrets.enable_password !== undefined,
    };
  }
}

export const credentialJson = (c: Credential) => ({
  id: c.id,
  name: c.name,
  username: c.username,
  has_password: c.hasPassword,
  has_private_key: c.hasPrivateKey,
  has_enable_password: c.hasEnablePassword,
  created_at: c.createdAt,
  updated_at: c.updatedAt,
});
