import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { DbOrTx } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import { isSameOrBelow } from '../../storage/safe-path.ts';
import type { AlsoInTransaction } from '../files/files.service.ts';
import type { WebdavRepository } from './webdav.repository.ts';
import type { DavLock, DeadProperty } from './webdav.types.ts';

/** Longest lock we grant; clients asking for Infinite or more get this (RFC 4918 §10.7 lets the server choose). */
export const MAX_LOCK_SECONDS = 7 * 24 * 3600;
export const DEFAULT_LOCK_SECONDS = 3600;

export type PropertyUpdate = { op: 'set'; prop: DeadProperty } | { op: 'remove'; namespace: string; name: string };

export interface LockRequest {
  scope: 'exclusive' | 'shared';
  depth: '0' | 'infinity';
  ownerXml: string | null;
  timeoutSeconds: number;
}

/**
 * What WebDAV adds to the files module: dead properties and write locks, both in the database so every
 * process sees them (DESIGN.md: processes). Bytes and the index stay with FilesService.
 */
export class WebdavService {
  constructor(
    private readonly deps: {
      db: DbOrTx;
      repo: WebdavRepository;
      clock: Clock;
    },
  ) {}

  private now(): string {
    return this.deps.clock.now().toISOString();
  }

  // ------------------------------------------------------------ dead properties

  properties(userId: string, path: string): Promise<DeadProperty[]> {
    return this.deps.repo.properties(userId, path);
  }

  /** Dead properties of a folder and of each of its direct children, by path: one query for a PROPFIND Depth 1. */
  async propertiesOfFolder(userId: string, folder: string): Promise<Map<string, DeadProperty[]>> {
    const byPath = new Map<string, DeadProperty[]>();
    for (const { path, ...prop } of await this.deps.repo.propertiesOfFolder(userId, folder)) {
      const list = byPath.get(path);
      if (list) list.push(prop);
      else byPath.set(path, [prop]);
    }
    return byPath;
  }

  /** Applies every update in order, all or nothing (RFC 4918 §9.2). */
  async patchProperties(userId: string, path: string, updates: readonly PropertyUpdate[]): Promise<void> {
    await inTransaction(this.deps.db, async (tx) => {
      const repo = this.deps.repo.on(tx);
      for (const u of updates) {
        if (u.op === 'set') await repo.setProperty(userId, path, u.prop);
        else await repo.removeProperty(userId, path, u.namespace, u.name);
      }
    });
  }

  // What MOVE, COPY and DELETE do to dead properties and locks, as index writes for the files module to
  // run in the same transaction as its own (FilesService's `alsoInTransaction`): the resource and its
  // properties change together or not at all (issue 13).

  /** MOVE: properties follow the resource; locks on the source are gone (RFC 4918 §9.9.4), and so are a replaced target's. */
  onMove(userId: string, from: string, to: string): AlsoInTransaction {
    return async (tx) => {
      const repo = this.deps.repo.on(tx);
      await repo.deleteLocksAt(userId, to);
      await repo.transferProperties(userId, from, to, true);
      await repo.deleteLocksAt(userId, from);
    };
  }

  /**
   * COPY: the copy gets the properties (not the locks) of the source, replacing a target's properties
   * and locks. `depthZero`: a collection copied without its members (only its own properties).
   */
  onCopy(userId: string, from: string, to: string, depthZero: boolean): AlsoInTransaction {
    return async (tx) => {
      const repo = this.deps.repo.on(tx);
      await repo.deleteLocksAt(userId, to);
      await repo.transferProperties(userId, from, to, false, depthZero);
    };
  }

  /** DELETE (and a target replaced by COPY or MOVE): properties and locks go with the resource. */
  onDelete(userId: string, path: string): AlsoInTransaction {
    return async (tx) => {
      const repo = this.deps.repo.on(tx);
      await repo.deletePropertiesAt(userId, path);
      await repo.deleteLocksAt(userId, path);
    };
  }

  // ------------------------------------------------------------ locks

  /** Locks whose scope includes `path` (the lock root or a depth-infinity ancestor). */
  async locksCovering(userId: string, path: string): Promise<DavLock[]> {
    const around = await this.deps.repo.locksAround(userId, path, this.now(), false);
    return around.filter((l) => covers(l, path));
  }

  /**
   * As locksCovering(), for a folder and each of its direct children at once (one query for a PROPFIND
   * Depth 1): the returned function gives the locks covering `folder` or one of its children.
   */
  async locksCoveringFolder(userId: string, folder: string): Promise<(path: string) => DavLock[]> {
    const locks = await this.deps.repo.locksOfFolder(userId, folder, this.now());
    if (locks.length === 0) return () => [];
    return (path) => locks.filter((l) => covers(l, path));
  }

  /** Locks that a write to `path` must hold tokens for: covering it, and, for `subtree`, any lock below it. */
  async locksAffecting(userId: string, path: string, subtree: boolean): Promise<DavLock[]> {
    const around = await this.deps.repo.locksAround(userId, path, this.now(), subtree);
    return around.filter((l) => covers(l, path) || (subtree && isSameOrBelow(l.path, path)));
  }

  /**
   * Refuses (423 locked) a write to `path` unless every lock it touches had its token submitted.
   * `parentOnly`: creating or removing a member changes the parent collection's membership (RFC 4918
   * §7.4): a depth-0 lock on the parent does not forbid it, only locks that cover the member do.
   */
  async assertCanWrite(userId: string, path: string, tokens: ReadonlySet<string>, options: { subtree?: boolean } = {}): Promise<void> {
    const blocking = (await this.locksAffecting(userId, path, options.subtree ?? false)).filter((l) => !tokens.has(l.token));
    if (blocking.length > 0) {
      throw new AppError('locked', `${JSON.stringify(path || '/')} is locked`, { lock_root: blocking[0]!.path });
    }
  }

  async lock(userId: string, path: string, request: LockRequest): Promise<DavLock> {
    // Expired locks are ignored by every query; granting a lock is a good moment to drop them.
    await this.deps.repo.pruneExpiredLocks(this.now());
    const existing = await this.locksAffecting(userId, path, request.depth === 'infinity');
    const conflict = existing.find((l) => l.scope === 'exclusive' || request.scope === 'exclusive');
    if (conflict) throw new AppError('locked', `${JSON.stringify(path || '/')} is already locked`, { lock_root: conflict.path });
    const now = this.deps.clock.now();
    const lock: DavLock = {
      token: `urn:uuid:${randomUUID()}`,
      ownerId: userId,
      path,
      scope: request.scope,
      depth: request.depth,
      ownerXml: request.ownerXml,
      timeoutSeconds: request.timeoutSeconds,
      expiresAt: new Date(now.getTime() + request.timeoutSeconds * 1000).toISOString(),
      createdAt: now.toISOString(),
    };
    await this.deps.repo.insertLock(lock);
    return lock;
  }

  /** Refreshes a lock that covers `path` and whose token was submitted (RFC 4918 §9.10.2). */
  async refresh(userId: string, path: string, tokens: ReadonlySet<string>, timeoutSeconds: number): Promise<DavLock> {
    const lock = (await this.locksCovering(userId, path)).find((l) => tokens.has(l.token));
    if (!lock) throw new AppError('precondition_failed', 'no lock on this resource matches the submitted lock token');
    const expiresAt = new Date(this.deps.clock.now().getTime() + timeoutSeconds * 1000).toISOString();
    await this.deps.repo.refreshLock(userId, lock.token, timeoutSeconds, expiresAt);
    return { ...lock, timeoutSeconds, expiresAt };
  }

  async unlock(userId: string, path: string, token: string): Promise<void> {
    const lock = (await this.locksCovering(userId, path)).find((l) => l.token === token);
    if (!lock) throw new AppError('conflict', 'the lock token does not belong to a lock on this resource');
    await this.deps.repo.deleteLock(userId, token);
  }

  /** Seconds left on a lock, as the Timeout property reports them. */
  secondsLeft(lock: DavLock): number {
    return Math.max(0, Math.round((Date.parse(lock.expiresAt) - this.deps.clock.now().getTime()) / 1000));
  }
}

function covers(lock: DavLock, path: string): boolean {
  return lock.path === path || (lock.depth === 'infinity' && isSameOrBelow(path, lock.path));
}
