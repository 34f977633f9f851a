import { AppError } from '../../errors.ts';
import type { BackupLocationsService } from '../backups/backup-locations.service.ts';
import type { NetworkDevicesService } from '../backups/network-devices.service.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { CredentialsService } from './credentials.service.ts';

/** Columns of an inventory file (issue 10); `group` and `credential` may be empty. */
export const IMPORT_COLUMNS = ['name', 'address', 'model', 'group', 'credential'] as const;
const MAX_ROWS = 10_000;

/**
 * RFC 4180 CSV: fields separated by commas, optionally quoted with `"` (a doubled `""` inside is one
 * quote, and a quoted field may hold commas and line breaks), records ending in CRLF or LF. Returns the
 * records with their 1-based line numbers; throws invalid_request naming the line of a malformed one.
 */
export function parseCsv(text: string): { line: number; fields: string[] }[] {
  const records: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let recordLine = 1;
  let fieldStarted = false;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !fieldStarted)) records.push({ line: recordLine, fields });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i++;
        } else {
          quoted = false;
          const next = text[i + 1];
          if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') throw new AppError('invalid_request', `CSV line ${line}: text after a closing quote`);
        }
      } else {
        if (c === '\n') line++;
        field += c;
      }
      continue;
    }
    if (c === '"') {
      if (field !== '') throw new AppError('invalid_request', `CSV line ${line}: a quote inside an unquoted field`);
      quoted = true;
      fieldStarted = true;
    } else if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = true;
    } else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      endRecord();
      line++;
      recordLine = line;
    } else {
      field += c;
      fieldStarted = true;
    }
  }
  if (quoted) throw new AppError('invalid_request', `CSV line ${recordLine}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0 || fieldStarted) endRecord();
  return records;
}

export interface ImportRowReport {
  /** 1-based line in the file (the header is line 1). */
  row: number;
  name: string;
  action: 'create' | 'update' | 'error';
  error?: string;
}

export interface ImportReport {
  dry_run: boolean;
  imported: boolean;
  created: number;
  updated: number;
  errors: number;
  rows: ImportRowReport[];
}

/**
 * `POST /api/v1/network-devices/import` (issue 10): creates and updates network devices by name from a
 * CSV inventory. Every row is checked first (the same checks as the API's create/update, plus duplicate
 * names and unknown credentials) and every bad row is reported with its line; any bad row refuses the
 * whole file and nothing is written. A good file is written in one transaction (all rows or none).
 */
export class DeviceImport {
  constructor(
    private readonly deps: { devices: NetworkDevicesService; locations: BackupLocationsService; credentials: CredentialsService },
  ) {}

  async run(ctx: OrgContext, csv: string, options: { dryRun: boolean; location?: string }): Promise<ImportReport> {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'importing network devices needs the admin role in the organization');
    const records = parseCsv(csv.replace(/^\uFEFF/, ''));
    if (records.length === 0) throw new AppError('invalid_request', `the CSV is empty; its first line must be the header ${IMPORT_COLUMNS.join(',')}`);
    const header = records[0]!.fields.map((h) => h.trim().toLowerCase());
    const missing = ['name', 'address', 'model'].filter((c) => !header.includes(c));
    const unknown = header.filter((h) => !(IMPORT_COLUMNS as readonly string[]).includes(h));
    if (missing.length || unknown.length || new Set(header).size !== header.length) {
      throw new AppError('invalid_request', `CSV line 1: the header must name the columns ${IMPORT_COLUMNS.join(',')} (name, address and model required, each once)${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
    }
    const rows = records.slice(1);
    if (rows.length > MAX_ROWS) throw new AppError('invalid_request', `a CSV may have at most ${MAX_ROWS} rows`);
    const location = await this.#location(ctx, options.location);

    const planned: { report: ImportRowReport; body: Record<string, unknown>; id?: string }[] = [];
    const seen = new Map<string, number>();
    for (const r of rows) {
      const get = (col: string) => {
        const i = header.indexOf(col);
        return i < 0 ? '' : (r.fields[i] ?? '').trim();
      };
      const name = get('name');
      const report: ImportRowReport = { row: r.line, name, action: 'create' };
      try {
        if (r.fields.length !== header.length) throw new AppError('invalid_request', `expected ${header.length} fields, found ${r.fields.length}`);
        if (seen.has(name)) throw new AppError('invalid_request', `the name "${name}" is also on line ${seen.get(name)}`);
        seen.set(name, r.line);
        const credentialName = get('credential');
        let credentialId: string | null | undefined;
        if (credentialName !== '') {
          const c = await this.deps.credentials.findByName(ctx.organizationId, credentialName);
          if (!c) throw new AppError('invalid_request', `no credential named "${credentialName}"`);
          credentialId = c.id;
        }
        const group = get('group');
        const body: Record<string, unknown> = { address: get('address'), model: get('model') === '' ? null : get('model') };
        if (credentialId !== undefined) body.credential_id = credentialId;
        const existing = name === '' ? undefined : await this.deps.devices.getByName(ctx, name).catch((err) => (err instanceof AppError && err.code === 'not_found' ? undefined : Promise.reject(err)));
        if (existing) {
          if (group !== '' && group !== existing.group) throw new AppError('invalid_request', `group: "${name}" is in group "${existing.group}"; the group of a device cannot change`);
          report.action = 'update';
          await this.deps.devices.validate(ctx, body, existing.id);
          planned.push({ report, body, id: existing.id });
        } else {
          const create = { name, ...body, backup_location_id: location?.id, ...(group !== '' ? { group } : {}) };
          if (!location) throw new AppError('invalid_request', 'no backup location for new devices: pass ?location=NAME');
          await this.deps.devices.validate(ctx, create);
          planned.push({ report, body: create });
        }
      } catch (err) {
        if (!(err instanceof AppError) || (err.code !== 'invalid_request' && err.code !== 'already_exists')) throw err;
        report.action = 'error';
        report.error = err.message;
        planned.push({ report, body: {} });
      }
    }
    const errors = planned.filter((p) => p.report.action === 'error').length;
    const created = planned.filter((p) => p.report.action === 'create').length;
    const updated = planned.filter((p) => p.report.action === 'update').length;
    const imported = errors === 0 && !options.dryRun;
    // All rows in one transaction: a row failing at write time (a name taken meanwhile) or a crash
    // midway leaves nothing imported.
    if (imported) await this.deps.devices.saveAll(ctx, planned.map((p) => (p.id ? { id: p.id, body: p.body } : { body: p.body })));
    return { dry_run: options.dryRun, imported, created, updated, errors, rows: planned.map((p) => p.report) };
  }

  async #location(ctx: OrgContext, name: string | undefined) {
    if (name !== undefined) return this.deps.locations.getByName(ctx, name).catch(() => Promise.reject(new AppError('invalid_request', `location: no backup location named "${name}"`)));
    const all = await this.deps.locations.list(ctx);
    return all.length === 1 ? all[0] : undefined;
  }
}
