import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../errors.ts';
import type { OpenedFile } from './files.service.ts';
import { ifNoneMatchPasses, parseRange } from './http-conditions.ts';

/** RFC 6266 / 8187 Content-Disposition value for any file name. */
function disposition(kind: 'inline' | 'attachment', name: string): string {
  const ascii = name.replace(/[^\x20-\x7e]|["\\%]/g, '_');
  return `${kind}; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(name)}`;
}

/**
 * Streams an opened file as the answer to GET or HEAD, with validators and Range support: 200, 206,
 * 304 or 416. Always closes the handle (the stream closes it when it ends or the client goes away).
 * User content is served with nosniff and a sandbox CSP so an uploaded HTML file cannot run script in
 * the server's origin.
 */
export async function sendFile(
  request: FastifyRequest,
  reply: FastifyReply,
  file: OpenedFile,
  options: {
    attachment?: boolean;
    cacheControl?: string;
    /**
     * Runs only when a GET is about to deliver content (200 or 206), after the conditional and Range
     * checks: a 304, a 416 or a HEAD never reaches it. If it throws, the file is closed and the error
     * answers instead (share links count downloads here; issue 12).
     */
    beforeDelivery?: () => Promise<void>;
  } = {},
): Promise<FastifyReply> {
  const { entry } = file;
  reply
    .header('etag', entry.etag)
    .header('last-modified', new Date(entry.mtimeMs).toUTCString())
    .header('accept-ranges', 'bytes')
    .header('x-content-type-options', 'nosniff')
    .header('content-security-policy', 'sandbox')
    .header('content-disposition', disposition(options.attachment ? 'attachment' : 'inline', file.name))
    .header('cache-control', options.cacheControl ?? 'private, no-cache');

  const ifNoneMatch = header(request, 'if-none-match');
  if (!ifNoneMatchPasses(ifNoneMatch, entry.etag)) {
    await file.close();
    return reply.status(304).send();
  }

  // If-Range: only honour Range when the client's copy is still the current one.
  const ifRange = header(request, 'if-range');
  const rangeHeader = ifRange === undefined || ifRange === entry.etag ? header(request, 'range') : undefined;
  const range = parseRange(rangeHeader, entry.size);
  if (range === 'unsatisfiable') {
    await file.close();
    reply.header('content-range', `bytes */${entry.size}`);
    throw new AppError('range_not_satisfiable', `range ${JSON.stringify(rangeHeader)} lies outside the file (${entry.size} bytes)`);
  }
  if (request.method === 'GET' && options.beforeDelivery) {
    try {
      await options.beforeDelivery();
    } catch (err) {
      await file.close();
      throw err;
    }
  }
  reply.type(file.contentType);
  const start = range?.start ?? 0;
  const end = range?.end ?? entry.size - 1;
  const length = entry.size === 0 ? 0 : end - start + 1;
  reply.header('content-length', length);
  if (range) reply.status(206).header('content-range', `bytes ${start}-${end}/${entry.size}`);

  if (request.method === 'HEAD' || length === 0) {
    await file.close();
    return reply.send();
  }
  return reply.send(file.stream(start, end));
}

/** A request header as one string (a repeated header joined with ", ", as RFC 9110 §5.3 allows). */
export function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return Array.isArray(v) ? v.join(', ') : v;
}
