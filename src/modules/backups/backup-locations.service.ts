import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import { AppError } from '../../errors.ts';
import { resolveLocationFolder } from '../../storage/backup-plugins/backup-folder.ts';
import type { OrgContext } from '../organizations/organizations.types.ts';
import type { BackupsRepository } from './backups.repository.ts';
import { checkKnownKeys, requireObject, validLocationConfig, validName, validType } from './backups.schemas.ts';
import type { BackupLocation } from './backups.types.ts';

/** Where an organization's backups are stored: a git repository or an fs folder (issue 9). */
export class BackupLocationsService {
  constructor(
    private readonly repo: BackupsRepository,
    private readonly clock: Clock,
    private readonly backupsRoot: string,
  ) {}

  requireAdmin(ctx: OrgContext): void {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'managing backups needs the admin role in the organization');
  }

  async create(ctx: OrgContext, body: unknown): Promise<BackupLocation> {
    this.requireAdmin(ctx);
    const b = requireObject(body, 'body');
    checkKnownKeys(b, ['name', 'type', 'config'], 'backup location');
    const name = validName(b.name, 'name');
    const type = validType(b.type);
    const config = validLocationConfig(type, b.config);
    await this.#checkFolder(ctx, config.folder, null);
    if (await this.repo.findLocationByName(ctx.organizationId, name)) throw new AppError('already_exists', `a backup location named "${name}" exists`);
    const now = this.clock.now().toISOString();
    const location: BackupLocation = { id: randomUUID(), organizationId: ctx.organizationId, name, type, config, createdAt: now, updatedAt: now };
    try {
      await this.repo.insertLocation(location);
    } catch (err) {
      if (await this.repo.findLocationByName(ctx.organizationId, name)) throw new AppError('already_exists', `a backup location named "${name}" exists`);
      // The CLI names organizations by id; an unknown one fails the foreign key.
      if (/foreign key/i.test((err as Error).message)) throw new AppError('invalid_request', `no organization with id "${ctx.organizationId}"`);
      throw err;
    }
    return location;
  }

  /** Organizations that have backup locations (the CLI picks the only one when --org is not given). */
  organizationsWithLocations(): Promise<string[]> {
    return this.repo.organizationsWithLocations();
  }

  list(ctx: OrgContext): Promise<BackupLocation[]> {
    return this.repo.listLocations(ctx.organizationId);
  }

  async get(ctx: OrgContext, id: string): Promise<BackupLocation> {
    const l = await this.repo.findLocation(ctx.organizationId, id);
    if (!l) throw new AppError('not_found', 'no such backup location');
    return l;
  }

  async getByName(ctx: OrgContext, name: string): Promise<BackupLocation> {
    const l = await this.repo.findLocationByName(ctx.organizationId, name);
    if (!l) throw new AppError('not_found', `no backup location named "${name}"`);
    return l;
  }

  /** Renames or reconfigures; the type never changes, the folder only while no device uses the location. */
  async update(ctx: OrgContext, id: string, body: unknown): Promise<BackupLocation> {
    this.requireAdmin(ctx);
    const current = await this.get(ctx, id);
    const b = requireObject(body, 'body');
    checkKnownKeys(b, ['name', 'type', 'config'], 'backup location');
    if (b.type !== undefined && b.type !== current.type) throw new AppError('invalid_request', 'the type of a backup location cannot change');
    const name = b.name === undefined ? current.name : validName(b.name, 'name');
    const config = b.config === undefined ? current.config : validLocationConfig(current.type, b.config);
    if (config.folder !== current.config.folder) {
      if ((await this.repo.countDevicesAt(ctx.organizationId, id)) > 0) throw new AppError('conflict', 'the folder of a location with network devices cannot change');
      await this.#checkFolder(ctx, config.folder, id);
    }
    if (name !== current.name && (await this.repo.findLocationByName(ctx.organizationId, name))) throw new AppError('already_exists', `a backup location named "${name}" exists`);
    const updated: BackupLocation = { ...current, name, config, updatedAt: this.clock.now().toISOString() };
    await this.repo.updateLocation(updated);
    return updated;
  }

  async delete(ctx: OrgContext, id: string): Promise<void> {
    this.requireAdmin(ctx);
    await this.get(ctx, id);
    if ((await this.repo.countDevicesAt(ctx.organizationId, id)) > 0) throw new AppError('conflict', 'the backup location still has network devices; move or delete them first');
    // The repository or folder on disk stays: deleting an index row never deletes backups.
    await this.repo.deleteLocation(ctx.organizationId, id);
  }

  /** Confinement (symlinks included) and one location per folder. */
  async #checkFolder(ctx: OrgContext, folder: string, selfId: string | null): Promise<void> {
    await resolveLocationFolder(this.backupsRoot, ctx.organizationId, folder);
    const clash = (await this.repo.listLocations(ctx.organizationId)).find(
      (l) => l.id !== selfId && (l.config.folder === folder || l.config.folder.startsWith(`${folder}/`) || folder.startsWith(`${l.config.folder}/`)),
    );
    if (clash) throw new AppError('conflict', `the folder overlaps backup location "${clash.name}"`);
  }
}
