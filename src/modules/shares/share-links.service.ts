import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import { normalizeUserPath } from '../../storage/safe-path.ts';
import { hashPassword, randomToken, sha256Hex, verifyPassword } from '../../lib/crypto.ts';
import type { AttemptLimiter } from '../../throttle/attempt-limiter.ts';
import type { FilesService, OpenedFile } from '../files/files.service.ts';
import type { DirListing } from '../files/files.types.ts';
import type { ShareLinksRepository } from './share-links.repository.ts';
import { statusOf, toView, type ShareLink, type ShareLinkView } from './share-links.types.ts';

export interface CreateShareInput {
  path: string;
  /** ISO-8601 date-time in the future. */
  expiresAt?: string | null;
  password?: string | null;
  maxDownloads?: number | null;
}

/** What a public request resolved to: a file to stream, or a folder to list. */
export type ShareTarget =
  | { kind: 'file'; file: OpenedFile; consume: () => Promise<void> }
  | { kind: 'folder'; listing: DirListing };

// 32 random bytes: 256 bits, well above the 128 the issue asks for; URL-safe base64, 43 characters.
const TOKEN_BYTES = 32;
const TOKEN_SHAPE = /^[A-Za-z0-9_-]{16,128}$/;
export const MAX_SHARE_PASSWORD_LENGTH = 1024;

/**
 * Share links: a public URL for one index row (file or folder). Tokens are shown once and stored as
 * sha256 (they carry 256 random bits, so a fast hash is safe and lets us look them up); passwords use
 * scrypt. A link pointing at a row survives moves of that row and dies with it.
 */
export class ShareLinksService {
  constructor(
    private readonly repo: ShareLinksRepository,
    private readonly files: FilesService,
    private readonly clock: Clock,
    private readonly publicUrl: string,
    /** Counts wrong passwords per link (shared by every process), so a protected link cannot be brute-forced from many IPs. */
    private readonly passwordThrottle: AttemptLimiter,
  ) {}

  async create(ownerId: string, input: CreateShareInput): Promise<ShareLinkView & { token: string; url: string }> {
    const now = this.clock.now();
    const expiresAt = input.expiresAt == null ? null : parseFuture(input.expiresAt, now);
    if (input.maxDownloads != null && (!Number.isSafeInteger(input.maxDownloads) || input.maxDownloads < 1)) {
      throw new AppError('invalid_request', 'max_downloads must be a whole number >= 1');
    }
    if (input.password != null && (input.password.length < 1 || input.password.length > MAX_SHARE_PASSWORD_LENGTH)) {
      throw new AppError('invalid_request', `password must be 1 to ${MAX_SHARE_PASSWORD_LENGTH} characters`);
    }
    const record = await this.files.record(ownerId, input.path);
    const token = randomToken(TOKEN_BYTES);
    const link = await this.repo.insert({
      id: randomUUID(),
      ownerId,
      fileId: record.id,
      tokenHash: sha256Hex(token),
      passwordHash: input.password == null ? null : await hashPassword(input.password),
      expiresAt,
      maxDownloads: input.maxDownloads ?? null,
      createdAt: now.toISOString(),
    });
    return { ...toView(link, now), token, url: `${this.publicUrl}/s/${token}` };
  }

  async list(ownerId: string): Promise<ShareLinkView[]> {
    const now = this.clock.now();
    return (await this.repo.listByOwner(ownerId)).map((l) => toView(l, now));
  }

  async revoke(ownerId: string, id: string): Promise<void> {
    if (!(await this.repo.revoke(ownerId, id, this.clock.now().toISOString()))) {
      throw new AppError('not_found', 'no such share link');
    }
  }

  /**
   * Resolves a public request. 404 for unknown, expired, revoked or exhausted links (one answer for all,
   * so a token cannot be probed for its state); 401 when a password is needed and missing or wrong.
   * `subpath` (folder links only) is validated like any user path and cannot leave the shared folder.
   */
  async open(token: string, password: string | undefined, subpath: string | undefined, options: { limit?: number; cursor?: string } = {}): Promise<ShareTarget> {
    const link = await this.activeLink(token, password);
    const sub = subpath === undefined || subpath === '' || subpath === '/' ? '' : normalizeUserPath(subpath);
    if (sub !== '' && !link.isDirectory) throw gone();
    const rel = sub === '' ? link.path : `${link.path}/${sub}`;
    try {
      // Only file or folder matters here: metaNormalized would also read the index and, for a row
      // without a hash, hash the whole file before every public download.
      if (await this.files.isFolderNormalized(link.ownerId, rel)) {
        const listing = await this.files.listNormalized(link.ownerId, rel, options);
        const cut = link.path.length + 1;
        return {
          kind: 'folder',
          listing: {
            path: sub,
            entries: listing.entries.map((e) => ({ ...e, path: e.path.slice(cut) })),
            next_cursor: listing.next_cursor,
          },
        };
      }
      const file = await this.files.openNormalized(link.ownerId, rel);
      return {
        kind: 'file',
        file,
        consume: async () => {
          // sendFile closes the file when this throws.
          if (!(await this.repo.consumeDownload(link.ownerId, link.id, this.clock.now().toISOString()))) throw gone();
        },
      };
    } catch (err) {
      // Whatever the owner's tree says (missing, a file where a folder was expected…), the visitor
      // learns nothing beyond "not here".
      if (err instanceof AppError && (err.code === 'not_found' || err.code === 'conflict')) throw gone();
      throw err;
    }
  }

  private async activeLink(token: string, password: string | undefined): Promise<ShareLink> {
    if (!TOKEN_SHAPE.test(token)) throw gone();
    const found = await this.repo.findByTokenHash(sha256Hex(token));
    if (!found || statusOf(found.link, this.clock.now()) !== 'active') throw gone();
    if (found.passwordHash !== null) {
      if (password === undefined || password === '') {
        throw new AppError('unauthorized', 'this share link is password-protected: send the password in the X-Share-Password header');
      }
      // Reserve the try before the slow check, atomically (issue 12: a concurrent burst beat check-then-record).
      const key = `link:${found.link.id}`;
      await this.passwordThrottle.reserve([key]);
      if (!(await verifyPassword(password, found.passwordHash))) throw new AppError('unauthorized', 'wrong share password');
      await this.passwordThrottle.refund(key);
    }
    return found.link;
  }
}

function gone(): AppError {
  return new AppError('not_found', 'this share link does not exist, has expired, was revoked or has been used up');
}

function parseFuture(value: string, now: Date): string {
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}T/.test(value) || Number.isNaN(ms)) {
    throw new AppError('invalid_request', 'expires_at must be an ISO-8601 date-time, e.g. 2030-01-31T12:00:00Z');
  }
  if (ms <= now.getTime()) throw new AppError('invalid_request', 'expires_at must be in the future');
  return new Date(ms).toISOString();
}
