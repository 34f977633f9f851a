import { sql } from 'kysely';
import type { DbOrTx } from '../../db/schema.ts';
import type { DavLock, DeadProperty } from './webdav.types.ts';

/** Number of characters (code points), as substr() counts them on SQLite and PostgreSQL alike. */
const codePoints = (s: string) => [...s].length;

/** `path` equals `prefix` or lies below it ('' = the root: everything). substr, not LIKE: paths may hold % and _. */
function atOrBelow(prefix: string) {
  if (prefix === '') return sql<boolean>`1 = 1`;
  const start = `${prefix}/`;
  return sql<boolean>`(path = ${prefix} or substr(path, 1, ${codePoints(start)}) = ${start})`;
}

/**
 * `path` is `folder` or one of its direct children. substr and a constant LIKE pattern (no user data in
 * it, so nothing to escape) work alike on SQLite and PostgreSQL.
 */
function folderOrChild(folder: string) {
  if (folder === '') return sql<boolean>`path not like '%/%'`;
  const start = `${folder}/`;
  const n = codePoints(start);
  return sql<boolean>`(path = ${folder} or (substr(path, 1, ${n}) = ${start} and substr(path, ${n + 1}) not like '%/%'))`;
}

/** `to` + the part of `path` after `from` (path is `from` or below it). */
const rebased = (path: string, from: string, to: string) => (path === from ? to : `${to}${from === '' ? '/' : ''}${path.slice(from.length)}`);

const CHUNK = 200;

/** Dead properties and locks of WebDAV resources (migration 0010). Every query is scoped to one owner. */
export class WebdavRepository {
  constructor(private readonly db: DbOrTx) {}

  on(db: DbOrTx): WebdavRepository {
    return new WebdavRepository(db);
  }

  // ------------------------------------------------------------ dead properties

  async properties(ownerId: string, path: string): Promise<DeadProperty[]> {
    const rows = await this.db
      .selectFrom('dav_properties')
      .select(['namespace', 'name', 'value_xml'])
      .where('owner_id', '=', ownerId)
      .where('path', '=', path)
      .orderBy('namespace')
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ namespace: r.namespace, name: r.name, valueXml: r.value_xml }));
  }

  /** Dead properties of `folder` and of each of its direct children, in one query (PROPFIND Depth 1). */
  async propertiesOfFolder(ownerId: string, folder: string): Promise<Array<DeadProperty & { path: string }>> {
    const rows = await this.db
      .selectFrom('dav_properties')
      .select(['path', 'namespace', 'name', 'value_xml'])
      .where('owner_id', '=', ownerId)
      .where(folderOrChild(folder))
      .orderBy('namespace')
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ path: r.path, namespace: r.namespace, name: r.name, valueXml: r.value_xml }));
  }

  async setProperty(ownerId: string, path: string, prop: DeadProperty): Promise<void> {
    await this.removeProperty(ownerId, path, prop.namespace, prop.name);
    await this.db
      .insertInto('dav_properties')
      .values({ owner_id: ownerId, path, namespace: prop.namespace, name: prop.name, value_xml: prop.valueXml })
      .execute();
  }

  async removeProperty(ownerId: string, path: string, namespace: string, name: string): Promise<void> {
    await this.db
      .deleteFrom('dav_properties')
      .where('owner_id', '=', ownerId)
      .where('path', '=', path)
      .where('namespace', '=', namespace)
      .where('name', '=', name)
      .execute();
  }

  async deletePropertiesAt(ownerId: string, path: string): Promise<void> {
    await this.db.deleteFrom('dav_properties').where('owner_id', '=', ownerId).where(atOrBelow(path)).execute();
  }

  /** Copies (or, with `move`, moves) the properties of `from` and everything below it onto `to`. */
  async transferProperties(ownerId: string, from: string, to: string, move: boolean, depthZero = false): Promise<void> {
    await this.deletePropertiesAt(ownerId, to);
    const rows = await this.db
      .selectFrom('dav_properties')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where(depthZero ? sql<boolean>`path = ${from}` : atOrBelow(from))
      .execute();
    if (move) await this.deletePropertiesAt(ownerId, from);
    const moved = rows.map((r) => ({ ...r, path: rebased(r.path, from, to) }));
    for (let i = 0; i < moved.length; i += CHUNK) {
      await this.db.insertInto('dav_properties').values(moved.slice(i, i + CHUNK)).execute();
    }
  }

  // ------------------------------------------------------------ locks

  /** Unexpired locks on `path`, on its ancestors (any depth is filtered by the caller) and, with `below`, under it. */
  async locksAround(ownerId: string, path: string, now: string, below: boolean): Promise<DavLock[]> {
    const ancestors = ancestorsAndSelf(path);
    const rows = await this.db
      .selectFrom('dav_locks')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('expires_at', '>', now)
      .where((eb) => (below ? eb.or([eb('path', 'in', ancestors), atOrBelow(path)]) : eb('path', 'in', ancestors)))
      .execute();
    return rows.map(toLock);
  }

  /** Unexpired locks on `folder`, its ancestors and its direct children, in one query (PROPFIND Depth 1). */
  async locksOfFolder(ownerId: string, folder: string, now: string): Promise<DavLock[]> {
    const rows = await this.db
      .selectFrom('dav_locks')
      .selectAll()
      .where('owner_id', '=', ownerId)
      .where('expires_at', '>', now)
      .where((eb) => eb.or([eb('path', 'in', ancestorsAndSelf(folder)), folderOrChild(folder)]))
      .execute();
    return rows.map(toLock);
  }

  async findLock(ownerId: string, token: string): Promise<DavLock | null> {
    const row = await this.db.selectFrom('dav_locks').selectAll().where('owner_id', '=', ownerId).where('token', '=', token).executeTakeFirst();
    return row ? toLock(row) : null;
  }

  async insertLock(lock: DavLock): Promise<void> {
    await this.db
      .insertInto('dav_locks')
      .values({
        token: lock.token,
        owner_id: lock.ownerId,
        path: lock.path,
        scope: lock.scope,
        depth: lock.depth,
        owner_xml: lock.ownerXml,
        timeout_seconds: lock.timeoutSeconds,
        expires_at: lock.expiresAt,
        created_at: lock.createdAt,
      })
      .execute();
  }

  async refreshLock(ownerId: string, token: string, timeoutSeconds: number, expiresAt: string): Promise<void> {
    await this.db
      .updateTable('dav_locks')
      .set({ timeout_seconds: timeoutSeconds, expires_at: expiresAt })
      .where('owner_id', '=', ownerId)
      .where('token', '=', token)
      .execute();
  }

  async deleteLock(ownerId: string, token: string): Promise<boolean> {
    const r = await this.db.deleteFrom('dav_locks').where('owner_id', '=', ownerId).where('token', '=', token).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  /** Locks go with their resource (RFC 4918 §9.6.1, §9.9.4: a MOVE does not move locks). */
  async deleteLocksAt(ownerId: string, path: string): Promise<void> {
    await this.db.deleteFrom('dav_locks').where('owner_id', '=', ownerId).where(atOrBelow(path)).execute();
  }

  async pruneExpiredLocks(now: string): Promise<void> {
    await this.db.deleteFrom('dav_locks').where('expires_at', '<=', now).execute();
  }
}

/** '' and every ancestor of `path`, and `path` itself. */
function ancestorsAndSelf(path: string): string[] {
  return ['', ...path.split('/').map((_, i, all) => all.slice(0, i + 1).join('/'))].filter((p, i, all) => all.indexOf(p) === i);
}

function toLock(row: {
  token: string;
  owner_id: string;
  path: string;
  scope: string;
  depth: string;
  owner_xml: string | null;
  timeout_seconds: number;
  expires_at: string;
  created_at: string;
}): DavLock {
  return {
    token: row.token,
    ownerId: row.owner_id,
    path: row.path,
    scope: row.scope === 'shared' ? 'shared' : 'exclusive',
    depth: row.depth === '0' ? '0' : 'infinity',
    ownerXml: row.owner_xml,
    timeoutSeconds: Number(row.timeout_seconds),
    expiresAt: row.expires_at,
    createdAt: row.created_at,
  };
}
