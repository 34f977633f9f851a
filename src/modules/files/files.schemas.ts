// JSON schemas of the files API: they validate requests and document the API in OpenAPI (/api/docs).
// Path *rules* are not expressed here: normalizeUserPath in the service is the one authority on them.

export interface PathParams {
  /** Absent on the bare routes (e.g. /api/v1/meta = the root). */
  '*'?: string;
}

export const pathParams = {
  type: 'object',
  properties: { '*': { type: 'string', description: 'path relative to your root, e.g. docs/report.pdf' } },
} as const;

export interface TransferBody {
  from: string;
  to: string;
  overwrite?: boolean;
}

export const transferBody = {
  type: 'object',
  additionalProperties: false,
  required: ['from', 'to'],
  properties: {
    from: { type: 'string', maxLength: 4096 },
    to: { type: 'string', maxLength: 4096 },
    overwrite: { type: 'boolean', default: false },
  },
} as const;

export const fileMetaSchema = {
  type: 'object',
  properties: {
    path: { type: 'string' },
    name: { type: 'string' },
    size: { type: 'integer' },
    content_type: { type: 'string' },
    is_directory: { type: 'boolean' },
    sha256: { type: ['string', 'null'] },
    modified_at: { type: 'string', format: 'date-time' },
    created_at: { type: 'string', format: 'date-time' },
    etag: { type: ['string', 'null'] },
  },
  required: ['path', 'name', 'size', 'content_type', 'is_directory', 'sha256', 'modified_at', 'created_at'],
} as const;

export const dirListingSchema = {
  type: 'object',
  properties: {
    path: { type: 'string' },
    entries: { type: 'array', items: fileMetaSchema },
    next_cursor: { type: ['string', 'null'] },
  },
  required: ['path', 'entries', 'next_cursor'],
} as const;
