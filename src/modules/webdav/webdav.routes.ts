import { Readable } from 'node:stream';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import { requireUser } from '../../http/auth.ts';
import { STATUS_BY_CODE } from '../../http/error-handler.ts';
import { isSameOrBelow, normalizeUserPath, parentOf } from '../../storage/safe-path.ts';
import { header, sendFile } from '../files/file-response.ts';
import type { FilesService } from '../files/files.service.ts';
import type { FileMeta } from '../files/files.types.ts';
import { parseIfHeader, submittedTokens, type IfList } from './if-header.ts';
import { DEFAULT_LOCK_SECONDS, MAX_LOCK_SECONDS, type PropertyUpdate, type WebdavService } from './webdav.service.ts';
import type { DavLock, DeadProperty } from './webdav.types.ts';
import { DAV_NS, elementsOf, elementXml, escapeXml, isDav, MAX_XML_BYTES, parseXml, serializeNodes, type XmlElement } from './xml.ts';

/** Where the WebDAV tree is mounted: `/dav/` is the caller's own root (issue 13). */
export const DAV_PREFIX = '/dav';

/** The DAV methods Fastify does not know by itself, and whether they carry a body (Fastify 5: addHttpMethod). */
const EXTRA_METHODS: ReadonlyArray<[string, boolean]> = [
  ['PROPFIND', true],
  ['PROPPATCH', true],
  ['MKCOL', true],
  ['COPY', false],
  ['MOVE', false],
  ['LOCK', true],
  ['UNLOCK', false],
];
const METHODS = ['OPTIONS', 'GET', 'HEAD', 'PUT', 'DELETE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK'];

/** An answer that only exists in WebDAV (207-style statuses, 423, precondition elements of RFC 4918 §16). */
class DavError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** A DAV: precondition/postcondition element name, sent as `<D:error><D:name/></D:error>`. */
    readonly condition?: string,
  ) {
    super(message);
  }
}

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  204: 'No Content',
  403: 'Forbidden',
  404: 'Not Found',
  409: 'Conflict',
  412: 'Precondition Failed',
  423: 'Locked',
  424: 'Failed Dependency',
  507: 'Insufficient Storage',
};
/** The same for every resource: exclusive and shared write locks (RFC 4918 §15.10). */
const SUPPORTED_LOCK = ['exclusive', 'shared'].map((s) => `<D:lockentry><D:lockscope><D:${s}/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockentry>`).join('');
const statusLine = (s: number) => `HTTP/1.1 ${s} ${STATUS_TEXT[s] ?? ''}`.trimEnd();
const STATUS_200 = statusLine(200);
const STATUS_404 = statusLine(404);

type Deps = { files: FilesService; webdav: WebdavService };
type Req = FastifyRequest;

/** The live properties (RFC 4918 §15, RFC 4331), in the order allprop and propname list them. */
const LIVE_NAMES = [
  'creationdate',
  'displayname',
  'getlastmodified',
  'resourcetype',
  'getcontentlength',
  'getcontenttype',
  'getetag',
  'supportedlock',
  'lockdiscovery',
  'quota-used-bytes',
  'quota-available-bytes',
] as const;
type LiveName = (typeof LIVE_NAMES)[number];
/** Inner XML of each live property a resource has; undefined = it has none (a folder's getetag, no quota). */
type LiveProps = Record<LiveName, string | undefined>;

/** A resource as PROPFIND describes it. */
interface Resource {
  path: string;
  /** hrefOf(path, is_directory), computed once per folder for its children. */
  href: string;
  meta: FileMeta;
}

export function webdavRoutes(deps: Deps) {
  const { files, webdav } = deps;

  return async (app: FastifyInstance) => {
    for (const [method, hasBody] of EXTRA_METHODS) {
      if (!app.supportedMethods.includes(method)) app.addHttpMethod(method, { hasBody });
    }

    await app.register(async (dav) => {
      // Bodies stay unparsed: PUT streams request.raw into the files service, XML bodies are read here
      // with a size limit (issue 13).
      dav.removeAllContentTypeParsers();
      dav.addContentTypeParser('*', (_request, _payload, done) => done(null));
      dav.setErrorHandler((err: FastifyError | AppError | DavError, request, reply) => davErrorReply(err, request, reply));

      const handler = async (request: Req, reply: FastifyReply) => {
        const user = requireUser(request);
        const userId = user.userId;
        const rel = davPath(request.url);
        reply.header('dav', '1, 2');
        switch (request.method) {
          case 'OPTIONS':
            return reply
              .header('allow', METHODS.join(', '))
              .header('ms-author-via', 'DAV')
              .header('content-length', 0)
              .status(200)
              .send();
          case 'GET':
          case 'HEAD':
            return get(request, reply, userId, rel);
          case 'PUT':
            return put(request, reply, userId, rel);
          case 'DELETE':
            return del(request, reply, userId, rel);
          case 'MKCOL':
            return mkcol(request, reply, userId, rel);
          case 'PROPFIND':
            return propfind(request, reply, userId, rel);
          case 'PROPPATCH':
            return proppatch(request, reply, userId, rel);
          case 'COPY':
          case 'MOVE':
            return copyMove(request, reply, userId, rel, request.method === 'MOVE');
          case 'LOCK':
            return lock(request, reply, userId, rel);
          case 'UNLOCK':
            return unlock(request, reply, userId, rel);
          default:
            throw new DavError(405, `${request.method} is not supported here`);
        }
      };

      for (const url of [DAV_PREFIX, `${DAV_PREFIX}/*`]) {
        dav.route({
          method: METHODS,
          url,
          exposeHeadRoute: false,
          // Basic auth for DAV clients; hidden from the OpenAPI document (it describes the REST API).
          config: { basicAuth: true },
          schema: { hide: true },
          handler,
        });
      }
    });
  };

  // ------------------------------------------------------------ helpers bound to the services

  async function metaOrNull(userId: string, rel: string): Promise<FileMeta | null> {
    try {
      return await files.metaNormalized(userId, rel);
    } catch (err) {
      if (err instanceof AppError && err.code === 'not_found') return null;
      throw err;
    }
  }

  async function requireParentFolder(userId: string, rel: string): Promise<void> {
    const parent = await metaOrNull(userId, parentOf(rel));
    if (!parent || !parent.is_directory) throw new DavError(409, `the parent collection of ${JSON.stringify(rel)} does not exist`);
  }

  /**
   * Evaluates the If header (RFC 4918 §10.4) against the current locks and ETags: 412 when it is false.
   * Returns the lock tokens it submits.
   */
  async function checkIf(request: Req, userId: string, rel: string): Promise<Set<string>> {
    const value = header(request, 'if');
    if (value === undefined) return new Set();
    const lists = parseIfHeader(value);
    if (!lists) throw new AppError('invalid_request', 'the If header is malformed');
    const state = new Map<string, { tokens: Set<string>; etag: string | null }>();
    const stateOf = async (path: string) => {
      let s = state.get(path);
      if (!s) {
        const [locks, meta] = await Promise.all([webdav.locksCovering(userId, path), metaOrNull(userId, path)]);
        s = { tokens: new Set(locks.map((l) => l.token)), etag: meta?.etag ?? null };
        state.set(path, s);
      }
      return s;
    };
    const listHolds = async (list: IfList) => {
      let path = rel;
      if (list.resource !== null) {
        const tagged = hrefToPath(list.resource, request);
        if (tagged === null) return false;
        path = tagged;
      }
      const s = await stateOf(path);
      for (const c of list.conditions) {
        const holds = c.token !== null ? s.tokens.has(c.token) : s.etag !== null && stripWeak(c.etag!) === stripWeak(s.etag);
        if (holds === c.not) return false;
      }
      return true;
    };
    let any = false;
    for (const list of lists) if (await listHolds(list)) any = true;
    if (!any) throw new DavError(412, 'the If header does not match the current state of the resource');
    return submittedTokens(lists);
  }

  async function writeGuard(request: Req, userId: string, rel: string, subtree = false): Promise<Set<string>> {
    const tokens = await checkIf(request, userId, rel);
    await webdav.assertCanWrite(userId, rel, tokens, { subtree });
    return tokens;
  }

  // ------------------------------------------------------------ methods

  async function get(request: Req, reply: FastifyReply, userId: string, rel: string) {
    const meta = await metaOrNull(userId, rel);
    if (!meta) throw new AppError('not_found', `no file or collection at ${JSON.stringify(rel || '/')}`);
    if (meta.is_directory) {
      // A small HTML index, so a browser pointed at /dav/ sees something useful.
      const listing = await files.listAllNormalized(userId, rel);
      const items = listing.map((m) => `<li><a href="${escapeXml(hrefOf(m.path, m.is_directory))}">${escapeXml(m.name)}${m.is_directory ? '/' : ''}</a></li>`);
      const html = `<!doctype html><meta charset="utf-8"><title>${escapeXml(rel || '/')}</title><ul>${items.join('')}</ul>`;
      reply.type('text/html; charset=utf-8').header('x-content-type-options', 'nosniff').header('content-security-policy', 'sandbox');
      return reply.send(request.method === 'HEAD' ? undefined : html);
    }
    return sendFile(request, reply, await files.openNormalized(userId, rel));
  }

  async function put(request: Req, reply: FastifyReply, userId: string, rel: string) {
    if (rel === '') throw new DavError(405, 'the root collection cannot be replaced by a file');
    await writeGuard(request, userId, rel);
    await requireParentFolder(userId, rel);
    const lengthHeader = header(request, 'content-length');
    const contentLength = lengthHeader === undefined ? undefined : Number(lengthHeader);
    try {
      const { meta, created } = await files.put(userId, rel, request.raw, {
        contentLength: Number.isSafeInteger(contentLength) ? contentLength : undefined,
        ifMatch: header(request, 'if-match'),
        ifNoneMatch: header(request, 'if-none-match'),
      });
      if (meta.etag) reply.header('etag', meta.etag);
      return reply.status(created ? 201 : 204).send();
    } catch (err) {
      if (!request.raw.readableEnded) reply.header('connection', 'close');
      if (err instanceof AppError && err.code === 'conflict' && /is a folder/.test(err.message)) throw new DavError(405, err.message);
      throw err;
    }
  }

  async function del(request: Req, reply: FastifyReply, userId: string, rel: string) {
    if (rel === '') throw new DavError(403, 'the root collection cannot be deleted');
    const meta = await metaOrNull(userId, rel);
    if (!meta) throw new AppError('not_found', `no file or collection at ${JSON.stringify(rel)}`);
    await writeGuard(request, userId, rel, true);
    await files.delete(userId, rel, { recursive: true, alsoInTransaction: webdav.onDelete(userId, rel) });
    return reply.status(204).send();
  }

  async function mkcol(request: Req, reply: FastifyReply, userId: string, rel: string) {
    if (hasBody(request)) throw new DavError(415, 'MKCOL with a request body is not supported');
    if (rel === '' || (await metaOrNull(userId, rel))) throw new DavError(405, `${JSON.stringify(rel || '/')} already exists`);
    await writeGuard(request, userId, rel);
    await requireParentFolder(userId, rel);
    await files.mkdir(userId, rel);
    return reply.status(201).send();
  }

  async function copyMove(request: Req, reply: FastifyReply, userId: string, from: string, move: boolean) {
    const destination = header(request, 'destination');
    if (!destination) throw new AppError('invalid_request', 'the Destination header is required');
    const to = resolveHref(destination, request);
    const overwriteHeader = (header(request, 'overwrite') ?? 'T').trim().toUpperCase();
    if (overwriteHeader !== 'T' && overwriteHeader !== 'F') throw new AppError('invalid_request', 'Overwrite must be T or F');
    const depth = (header(request, 'depth') ?? 'infinity').trim().toLowerCase();
    if (!['0', 'infinity'].includes(depth) || (move && depth !== 'infinity')) {
      throw new AppError('invalid_request', move ? 'MOVE needs Depth: infinity' : 'COPY takes Depth 0 or infinity');
    }
    const src = await metaOrNull(userId, from);
    if (!src) throw new AppError('not_found', `no file or collection at ${JSON.stringify(from || '/')}`);
    if (from === '' || to === '') throw new DavError(403, 'the root collection cannot be copied, moved or replaced');
    if (from === to) throw new DavError(403, 'source and destination are the same resource');
    if (isSameOrBelow(to, from) || isSameOrBelow(from, to)) throw new DavError(403, 'cannot copy or move a collection into itself or over its own parent');
    const tokens = await checkIf(request, userId, from);
    if (move) await webdav.assertCanWrite(userId, from, tokens, { subtree: true });
    await webdav.assertCanWrite(userId, to, tokens, { subtree: true });
    await requireParentFolder(userId, to);
    const existing = await metaOrNull(userId, to);
    if (existing && overwriteHeader === 'F') throw new DavError(412, `${JSON.stringify(to)} exists and Overwrite is F`);
    // Properties and locks change in the files transaction of each write (a replaced target's go too).
    if (move) {
      await files.move(userId, from, to, { overwrite: true, alsoInTransaction: webdav.onMove(userId, from, to) });
    } else if (src.is_directory && depth === '0') {
      if (existing) await files.delete(userId, to, { recursive: true, alsoInTransaction: webdav.onDelete(userId, to) });
      await files.mkdir(userId, to, { alsoInTransaction: webdav.onCopy(userId, from, to, true) });
    } else {
      await files.copy(userId, from, to, { overwrite: true, alsoInTransaction: webdav.onCopy(userId, from, to, false) });
    }
    return reply.status(existing ? 204 : 201).send();
  }

  async function propfind(request: Req, reply: FastifyReply, userId: string, rel: string) {
    const depth = (header(request, 'depth') ?? 'infinity').trim().toLowerCase();
    if (depth === 'infinity') throw new DavError(403, 'PROPFIND with Depth: infinity is not supported; use Depth 0 or 1', 'propfind-finite-depth');
    if (depth !== '0' && depth !== '1') throw new AppError('invalid_request', 'Depth must be 0, 1 or infinity');
    const body = await readXmlBody(request);
    // An empty body asks for allprop (RFC 4918 §9.1).
    let mode: 'allprop' | 'propname' | 'prop' = 'allprop';
    let wanted: Array<{ ns: string; name: string }> = [];
    if (body) {
      if (!isDav(body, 'propfind')) throw new AppError('invalid_request', 'the body must be a DAV:propfind element');
      const child = elementsOf(body)[0];
      if (!child) throw new AppError('invalid_request', 'DAV:propfind needs allprop, propname or prop');
      if (isDav(child, 'propname')) mode = 'propname';
      else if (isDav(child, 'prop')) {
        mode = 'prop';
        wanted = elementsOf(child).map((e) => ({ ns: e.ns, name: e.name }));
      } else if (!isDav(child, 'allprop')) throw new AppError('invalid_request', 'DAV:propfind needs allprop, propname or prop');
    }
    const meta = await metaOrNull(userId, rel);
    if (!meta) throw new AppError('not_found', `no file or collection at ${JSON.stringify(rel || '/')}`);
    const resources: Resource[] = [{ path: rel, href: hrefOf(rel, meta.is_directory), meta }];
    // One query each for dead properties and locks, and one disk listing for the children's ETags, sizes
    // and times, whatever the number of children (issue 13: 10,000 entries in <= 1 s).
    let deadOf: (path: string) => DeadProperty[];
    let locksOf: (path: string) => DavLock[];
    if (depth === '1' && meta.is_directory) {
      const [children, dead, locks] = await Promise.all([
        files.listAllNormalized(userId, rel),
        webdav.propertiesOfFolder(userId, rel),
        webdav.locksCoveringFolder(userId, rel),
      ]);
      const folderHref = hrefOf(rel, true);
      for (const m of children) resources.push({ path: m.path, href: `${folderHref}${encodeURIComponent(m.name)}${m.is_directory ? '/' : ''}`, meta: m });
      deadOf = (path) => dead.get(path) ?? [];
      locksOf = locks;
    } else {
      const [dead, locks] = await Promise.all([webdav.properties(userId, rel), webdav.locksCovering(userId, rel)]);
      deadOf = () => dead;
      locksOf = () => locks;
    }
    const wantsQuota = mode === 'prop' && wanted.some((w) => w.ns === DAV_NS && w.name.startsWith('quota-'));
    const usage = wantsQuota ? await files.usage(userId) : null;
    const render = (r: Resource) => responseXml(r.href, mode, wanted, liveProperties(r, locksOf(r.path), usage), deadOf(r.path));
    if (resources.length === 1) return sendMultistatus(reply, [render(resources[0]!)]);
    // Everything that can fail has been read: stream the answer as it is built, in ~64 KiB pieces, instead
    // of holding it whole (7 MB for 10,000 entries) as one string and then one buffer.
    return streamMultistatus(reply, resources, render);
  }

  /**
   * The live properties of a resource, as DAV: name → inner XML (escaped), in the order allprop lists
   * them. Built once per entry of a PROPFIND: a small object of strings, no Map.
   */
  function liveProperties(r: Resource, locks: DavLock[], usage: { usedBytes: number; quotaBytes: number | null } | null): LiveProps {
    const m = r.meta;
    const file = !m.is_directory;
    return {
      creationdate: escapeXml(m.created_at),
      displayname: escapeXml(m.name),
      getlastmodified: new Date(m.modified_at).toUTCString(),
      resourcetype: file ? '' : '<D:collection/>',
      getcontentlength: file ? String(m.size) : undefined,
      getcontenttype: file ? escapeXml(m.content_type) : undefined,
      getetag: file && m.etag ? escapeXml(m.etag) : undefined,
      supportedlock: SUPPORTED_LOCK,
      lockdiscovery: locks.length === 0 ? '' : locks.map((l) => activeLockXml(l)).join(''),
      'quota-used-bytes': usage ? String(usage.usedBytes) : undefined,
      // RFC 4331 §3: no quota = leave the property out.
      'quota-available-bytes': usage && usage.quotaBytes !== null ? String(Math.max(0, usage.quotaBytes - usage.usedBytes)) : undefined,
    };
  }

  function activeLockXml(l: DavLock): string {
    return (
      `<D:activelock><D:locktype><D:write/></D:locktype><D:lockscope><D:${l.scope}/></D:lockscope>` +
      `<D:depth>${l.depth === '0' ? '0' : 'infinity'}</D:depth>${l.ownerXml !== null ? `<D:owner>${l.ownerXml}</D:owner>` : ''}` +
      `<D:timeout>Second-${webdav.secondsLeft(l)}</D:timeout><D:locktoken><D:href>${escapeXml(l.token)}</D:href></D:locktoken>` +
      `<D:lockroot><D:href>${escapeXml(hrefOf(l.path, false))}</D:href></D:lockroot></D:activelock>`
    );
  }

  async function proppatch(request: Req, reply: FastifyReply, userId: string, rel: string) {
    const meta = await metaOrNull(userId, rel);
    if (!meta) throw new AppError('not_found', `no file or collection at ${JSON.stringify(rel || '/')}`);
    await writeGuard(request, userId, rel);
    const body = await readXmlBody(request);
    if (!body || !isDav(body, 'propertyupdate')) throw new AppError('invalid_request', 'the body must be a DAV:propertyupdate element');
    const updates: PropertyUpdate[] = [];
    const named: Array<{ ns: string; name: string }> = [];
    for (const action of elementsOf(body)) {
      const isSet = isDav(action, 'set');
      if (!isSet && !isDav(action, 'remove')) throw new AppError('invalid_request', 'DAV:propertyupdate holds only DAV:set and DAV:remove');
      for (const prop of elementsOf(action).filter((e) => isDav(e, 'prop'))) {
        for (const p of elementsOf(prop)) {
          named.push({ ns: p.ns, name: p.name });
          if (isSet) updates.push({ op: 'set', prop: { namespace: p.ns, name: p.name, valueXml: serializeNodes(p.children) } });
          else updates.push({ op: 'remove', namespace: p.ns, name: p.name });
        }
      }
    }
    // Live properties (DAV: namespace) are protected; one refusal fails the whole request (RFC 4918 §9.2).
    const refused = named.filter((n) => n.ns === DAV_NS);
    const results = named.map((n) => ({ ...n, status: refused.length === 0 ? 200 : refused.includes(n) ? 403 : 424 }));
    if (refused.length === 0) await webdav.patchProperties(userId, rel, updates);
    const byStatus = new Map<number, string[]>();
    for (const r of results) {
      const seen = byStatus.get(r.status) ?? [];
      seen.push(elementXml(r.ns, r.name, null));
      byStatus.set(r.status, seen);
    }
    const propstats = [...byStatus].map(([status, props]) => `<D:propstat><D:prop>${props.join('')}</D:prop><D:status>${statusLine(status)}</D:status></D:propstat>`);
    return sendMultistatus(reply, [`<D:response><D:href>${escapeXml(hrefOf(rel, meta.is_directory))}</D:href>${propstats.join('')}</D:response>`]);
  }

  async function lock(request: Req, reply: FastifyReply, userId: string, rel: string) {
    const timeoutSeconds = parseTimeout(header(request, 'timeout'));
    const body = await readXmlBody(request);
    if (!body) {
      // Refresh (RFC 4918 §9.10.2): the lock is named by the If header.
      const value = header(request, 'if');
      const lists = value === undefined ? null : parseIfHeader(value);
      if (!lists) throw new AppError('invalid_request', 'refreshing a lock needs an If header with its token');
      const refreshed = await webdav.refresh(userId, rel, submittedTokens(lists), timeoutSeconds);
      return sendLockDiscovery(reply.status(200), refreshed);
    }
    if (!isDav(body, 'lockinfo')) throw new AppError('invalid_request', 'the body must be a DAV:lockinfo element');
    const scopeEl = elementsOf(body).find((e) => isDav(e, 'lockscope'));
    const scopeName = scopeEl ? elementsOf(scopeEl)[0] : undefined;
    const scope = scopeName && isDav(scopeName, 'shared') ? 'shared' : scopeName && isDav(scopeName, 'exclusive') ? 'exclusive' : null;
    if (!scope) throw new AppError('invalid_request', 'DAV:lockscope must be exclusive or shared');
    const typeEl = elementsOf(body).find((e) => isDav(e, 'locktype'));
    if (!typeEl || !elementsOf(typeEl).some((e) => isDav(e, 'write'))) throw new AppError('invalid_request', 'only DAV:write locks exist');
    const ownerEl = elementsOf(body).find((e) => isDav(e, 'owner'));
    const depthHeader = (header(request, 'depth') ?? 'infinity').trim().toLowerCase();
    if (depthHeader !== '0' && depthHeader !== 'infinity') throw new AppError('invalid_request', 'LOCK takes Depth 0 or infinity');
    await checkIf(request, userId, rel);
    let meta = await metaOrNull(userId, rel);
    let created = false;
    if (!meta) {
      if (rel === '') throw new AppError('not_found', 'no root');
      await requireParentFolder(userId, rel);
      // LOCK on an unmapped URL creates an empty, locked resource (RFC 4918 §9.10.4; replaces lock-null).
      await webdav.assertCanWrite(userId, rel, new Set());
      meta = (await files.put(userId, rel, Readable.from([]), { contentLength: 0, ifNoneMatch: '*' })).meta;
      created = true;
    }
    const granted = await webdav.lock(userId, rel, {
      scope,
      depth: meta.is_directory ? (depthHeader as '0' | 'infinity') : '0',
      ownerXml: ownerEl ? serializeNodes(ownerEl.children) : null,
      timeoutSeconds,
    });
    reply.header('lock-token', `<${granted.token}>`);
    return sendLockDiscovery(reply.status(created ? 201 : 200), granted);
  }

  async function unlock(request: Req, reply: FastifyReply, userId: string, rel: string) {
    const value = header(request, 'lock-token');
    const m = value === undefined ? null : /^\s*<([^>]+)>\s*$/.exec(value);
    if (!m) throw new AppError('invalid_request', 'UNLOCK needs a Lock-Token header: <token>');
    try {
      await webdav.unlock(userId, rel, m[1]!);
    } catch (err) {
      if (err instanceof AppError && err.code === 'conflict') throw new DavError(409, err.message, 'lock-token-matches-request-uri');
      throw err;
    }
    return reply.status(204).send();
  }

  function sendLockDiscovery(reply: FastifyReply, l: DavLock) {
    const xml = `<?xml version="1.0" encoding="utf-8"?>\n<D:prop xmlns:D="DAV:"><D:lockdiscovery>${activeLockXml(l)}</D:lockdiscovery></D:prop>`;
    return reply.type('application/xml; charset=utf-8').send(xml);
  }
}

// ------------------------------------------------------------ pure helpers

function responseXml(
  href: string,
  mode: 'allprop' | 'propname' | 'prop',
  wanted: Array<{ ns: string; name: string }>,
  live: LiveProps,
  dead: DeadProperty[],
): string {
  // Plain concatenation (V8 ropes, linear): this runs once per entry of a PROPFIND Depth 1 (10,000 and more).
  let ok = '';
  let missing = '';
  if (mode === 'propname') {
    for (const name of LIVE_NAMES) if (live[name] !== undefined) ok += elementXml(DAV_NS, name, null);
    for (const d of dead) ok += elementXml(d.namespace, d.name, null);
  } else if (mode === 'allprop') {
    // RFC 4331 §3: the quota properties only when asked for by name.
    for (const name of LIVE_NAMES) {
      const value = live[name];
      if (value !== undefined && !name.startsWith('quota-')) ok += elementXml(DAV_NS, name, value);
    }
    for (const d of dead) ok += elementXml(d.namespace, d.name, d.valueXml);
  } else {
    for (const w of wanted) {
      const value = w.ns === DAV_NS && Object.hasOwn(live, w.name) ? live[w.name as LiveName] : undefined;
      const d = value === undefined ? dead.find((p) => p.namespace === w.ns && p.name === w.name) : undefined;
      if (value !== undefined) ok += elementXml(DAV_NS, w.name, value);
      else if (d) ok += elementXml(d.namespace, d.name, d.valueXml);
      else missing += elementXml(w.ns, w.name, null);
    }
  }
  return (
    `<D:response><D:href>${escapeXml(href)}</D:href>` +
    (ok !== '' || missing === '' ? `<D:propstat><D:prop>${ok}</D:prop><D:status>${STATUS_200}</D:status></D:propstat>` : '') +
    (missing !== '' ? `<D:propstat><D:prop>${missing}</D:prop><D:status>${STATUS_404}</D:status></D:propstat>` : '') +
    '</D:response>'
  );
}

const MULTISTATUS_HEAD = '<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">';
const MULTISTATUS_TAIL = '</D:multistatus>';
const STREAM_CHUNK_CHARS = 64 * 1024;

/** A 207 whose responses are rendered as the socket takes them (backpressure: read() is called when it wants more). */
function streamMultistatus<T>(reply: FastifyReply, items: readonly T[], render: (item: T) => string) {
  let next = 0;
  const body = new Readable({
    read() {
      let chunk = next === 0 ? MULTISTATUS_HEAD : '';
      while (next < items.length && chunk.length < STREAM_CHUNK_CHARS) chunk += render(items[next++]!);
      if (next >= items.length) {
        this.push(chunk + MULTISTATUS_TAIL);
        this.push(null);
      } else this.push(chunk);
    },
  });
  return reply.status(207).type('application/xml; charset=utf-8').send(body);
}

function sendMultistatus(reply: FastifyReply, responses: string[]) {
  const xml = `<?xml version="1.0" encoding="utf-8"?>\n<D:multistatus xmlns:D="DAV:">${responses.join('')}</D:multistatus>`;
  return reply.status(207).type('application/xml; charset=utf-8').send(xml);
}

/** The href of a path: /dav/ + each segment percent-encoded, collections with a trailing slash. */
export function hrefOf(rel: string, isDirectory: boolean): string {
  if (rel === '') return `${DAV_PREFIX}/`;
  return `${DAV_PREFIX}/${rel.split('/').map(encodeURIComponent).join('/')}${isDirectory ? '/' : ''}`;
}

/** The user path a request URL addresses (`/dav/a/b%20c` → `a/b c`); 400 for paths the files rules refuse. */
function davPath(url: string): string {
  const pathname = url.split('?')[0]!;
  const rest = pathname === DAV_PREFIX ? '' : pathname.slice(DAV_PREFIX.length);
  return normalizeUserPath(decodePath(rest), { allowRoot: true });
}

function decodePath(encoded: string): string {
  try {
    return encoded
      .split('/')
      .map((s) => {
        const d = decodeURIComponent(s);
        // An encoded slash inside a segment would address another folder than the one written.
        if (d.includes('/')) throw new AppError('invalid_path', 'a path segment contains an encoded "/"');
        return d;
      })
      .join('/');
  } catch (err) {
    if (err instanceof AppError) throw err;
    throw new AppError('invalid_path', 'the path is not validly percent-encoded UTF-8');
  }
}

/**
 * The user path a Destination header or If-header tag points at. An absolute URL must name this host
 * (else 502, RFC 4918 §9.8.5) and every href must lie under /dav/ (else 403). The caller's own root is
 * the only tree reachable, so no href can name another user's files (issue 13).
 */
function resolveHref(href: string, request: Req): string {
  let pathname: string;
  if (/^[a-z][a-z0-9+.-]*:/i.test(href)) {
    let url: URL;
    try {
      url = new URL(href);
    } catch {
      throw new AppError('invalid_request', 'the Destination is not a valid URL');
    }
    if (!['http:', 'https:'].includes(url.protocol) || url.host.toLowerCase() !== (request.headers.host ?? '').toLowerCase()) {
      throw new DavError(502, 'the Destination is on another server');
    }
    pathname = url.pathname;
  } else if (href.startsWith('/')) {
    pathname = href.split('?')[0]!;
  } else throw new AppError('invalid_request', 'the Destination must be an absolute URL or an absolute path');
  if (pathname !== DAV_PREFIX && !pathname.startsWith(`${DAV_PREFIX}/`)) throw new DavError(403, `the Destination must lie under ${DAV_PREFIX}/`);
  return davPath(pathname);
}

/** As resolveHref, but null for an href that addresses nothing here (an If-header tag then simply does not match). */
function hrefToPath(href: string, request: Req): string | null {
  try {
    return resolveHref(href, request);
  } catch {
    return null;
  }
}

const stripWeak = (etag: string) => etag.replace(/^W\//, '');

function hasBody(request: Req): boolean {
  const length = header(request, 'content-length');
  return (length !== undefined && Number(length) > 0) || header(request, 'transfer-encoding') !== undefined;
}

/** Reads an XML request body (at most MAX_XML_BYTES, else 413); null when there is none. */
async function readXmlBody(request: Req): Promise<XmlElement | null> {
  const length = header(request, 'content-length');
  if (length !== undefined && Number(length) > MAX_XML_BYTES) {
    throw new AppError('payload_too_large', `XML request bodies are limited to ${MAX_XML_BYTES} bytes`);
  }
  if (!hasBody(request)) return null;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request.raw) {
    size += (chunk as Buffer).length;
    if (size > MAX_XML_BYTES) throw new AppError('payload_too_large', `XML request bodies are limited to ${MAX_XML_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return null;
  return parseXml(text);
}

/** Timeout header (RFC 4918 §10.7): the first value we understand, capped; default one hour. */
function parseTimeout(value: string | undefined): number {
  if (value === undefined) return DEFAULT_LOCK_SECONDS;
  for (const part of value.split(',').map((s) => s.trim())) {
    if (/^infinite$/i.test(part)) return MAX_LOCK_SECONDS;
    const m = /^second-(\d{1,12})$/i.exec(part);
    if (m) return Math.min(MAX_LOCK_SECONDS, Math.max(1, Number(m[1])));
  }
  return DEFAULT_LOCK_SECONDS;
}

/** Errors as DAV clients expect them: DAV statuses, `WWW-Authenticate` on 401, 507 for quota (RFC 4331). */
function davErrorReply(err: FastifyError | AppError | DavError, request: Req, reply: FastifyReply) {
  reply.header('dav', '1, 2');
  let status: number;
  let condition: string | undefined;
  let message = err.message;
  if (err instanceof DavError) {
    status = err.status;
    condition = err.condition;
  } else if (err instanceof AppError) {
    status = STATUS_BY_CODE[err.code];
    if (err.code === 'quota_exceeded') {
      status = 507;
      condition = 'quota-not-exceeded';
    } else if (err.code === 'locked') {
      status = 423;
      condition = 'lock-token-submitted';
    } else if (err.code === 'invalid_request' && /into itself|over its own parent|onto itself/.test(err.message)) {
      status = 403;
    }
    if (typeof err.details?.retry_after === 'number') reply.header('retry-after', String(err.details.retry_after));
    if (status >= 500) request.log.error({ err }, err.message);
  } else {
    const statusCode = (err as FastifyError).statusCode ?? 500;
    if (statusCode >= 400 && statusCode < 500) status = statusCode;
    else {
      request.log.error({ err }, 'unhandled error');
      status = 500;
      message = `internal error (request id ${request.id})`;
    }
  }
  if (status === 401) reply.header('www-authenticate', 'Basic realm="Stormvault", charset="UTF-8"');
  const body = condition
    ? `<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:${condition}/></D:error>`
    : `<?xml version="1.0" encoding="utf-8"?>\n<D:error xmlns:D="DAV:"><D:message xmlns:D="DAV:">${escapeXml(message)}</D:message></D:error>`;
  reply.status(status);
  if (request.method === 'HEAD') return reply.send();
  return reply.type('application/xml; charset=utf-8').send(body);
}

