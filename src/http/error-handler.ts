import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError, type ErrorCode } from '../errors.ts';

/** The only place that knows HTTP statuses for domain error codes. */
export const STATUS_BY_CODE: Record<ErrorCode, number> = {
  invalid_request: 400,
  invalid_path: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  already_exists: 409,
  not_empty: 409,
  locked: 409,
  resync_required: 410,
  precondition_failed: 412,
  payload_too_large: 413,
  quota_exceeded: 413,
  range_not_satisfiable: 416,
  rate_limited: 429,
  internal: 500,
  unavailable: 503,
  insufficient_storage: 507,
};

export interface ErrorBody {
  error: { code: string; message: string; request_id?: string; [detail: string]: unknown };
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: Record<string, unknown>) {
  return reply.status(status).send({ error: { ...details, code, message } } satisfies ErrorBody);
}

/** Fastify's own 4xx errors (bad JSON, body too large, wrong content type…) under our envelope. */
function frameworkCode(err: FastifyError): string {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return 'payload_too_large';
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return 'unsupported_media_type';
    default:
      return 'invalid_request';
  }
}

export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | AppError, request: FastifyRequest, reply: FastifyReply) => {
    if (err instanceof AppError) {
      const status = STATUS_BY_CODE[err.code];
      if (status >= 500) request.log.error({ err }, err.message);
      if (typeof err.details?.retry_after === 'number') reply.header('retry-after', String(err.details.retry_after));
      return sendError(reply, status, err.code, err.message, err.details);
    }
    const fErr = err as FastifyError;
    if (fErr.validation) {
      return sendError(reply, 400, 'invalid_request', `${fErr.validationContext ?? 'request'} ${fErr.message.replace(/^(body|querystring|params|headers)\s*/, '')}`);
    }
    const status = fErr.statusCode ?? 500;
    if (status >= 400 && status < 500) {
      return sendError(reply, status, frameworkCode(fErr), fErr.message);
    }
    // Unknown failure: the stack goes to the log, the client gets an id to quote.
    request.log.error({ err }, 'unhandled error');
    return sendError(reply, 500, 'internal', `internal error (request id ${request.id})`, { request_id: request.id });
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(reply, 404, 'not_found', `no route for ${request.method} ${shortPath(request.url)}`),
  );
}

/** The path of a URL for a message, cut short: a 5 KB URL is not echoed back (issue 12). */
function shortPath(url: string): string {
  const path = url.split('?')[0]!;
  return path.length > 200 ? `${path.slice(0, 200)}…` : path;
}

/**
 * Fastify's `frameworkErrors`: the router's own refusals (a path parameter over maxParamLength, a URL
 * that does not decode such as `%c0%ae`) answer in the error envelope with a request id, and never echo
 * the URL (issue 12: they answered Fastify's default body with the whole URL in it).
 */
export function routerError(err: FastifyError, request: FastifyRequest, reply: FastifyReply) {
  reply.header('x-request-id', request.id);
  const details = { request_id: request.id };
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return sendError(reply, 414, 'uri_too_long', 'a path segment of the URL is too long', details);
  if (err.code === 'FST_ERR_BAD_URL') return sendError(reply, 400, 'invalid_request', 'the URL is not validly percent-encoded UTF-8', details);
  request.log.error({ err }, 'router error');
  return sendError(reply, 500, 'internal', `internal error (request id ${request.id})`, details);
}
