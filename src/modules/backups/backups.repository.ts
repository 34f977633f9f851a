import { sql, type Generated, type Kysely } from 'kysely';
import type { DialectName } from '../../db/database.ts';
import type { Database, DbOrTx } from '../../db/schema.ts';
import { statementFor } from '../../db/statement-template.ts';
import type { BackupLocation, DeviceCollection, LocationConfig, LocationType, NetworkDevice, StorageOutcome, StoredBackup } from './backups.types.ts';

// Row types of migration 0012, kept beside their SQL (DESIGN.md: rows stay in repositories).
type BackupTables = {
  backup_locations: { id: string; organization_id: string; name: string; type: string; config: string; created_at: string; updated_at: string };
  network_devices: {
    id: string;
    organization_id: string;
    name: string;
    address: string;
    group_name: string;
    backup_location_id: string;
    enabled: number;
    strip_patterns: string;
    ignore_patterns: string;
    last_backup_at: string | null;
    last_changed_at: string | null;
    last_status: string | null;
    last_error: string | null;
    consecutive_failures: Generated<number>;
    // migration 0013 (issue 10: collection)
    model: string | null;
    port: Generated<number>;
    credential_id: string | null;
    schedule: string | null;
    schedule_timezone: string | null;
    scrub_secrets: Generated<number>;
    collect_commands: string | null;
    created_at: string;
    updated_at: string;
  };
  stored_backups: {
    id: string;
    organization_id: string;
    network_device_id: string;
    location_id: string;
    storage_ref: string;
    sha256: string;
    size: number;
    collected_at: string;
    stored_at: string;
    task_identifier: string;
  };
  backup_task_outcomes: { task_identifier: string; network_device_id: string; outcome: string; processed_at: string };
};
type BDb = Kysely<Database & BackupTables>;
type LocationRow = BackupTables['backup_locations'];
type DeviceRow = Omit<BackupTables['network_devices'], 'consecutive_failures' | 'port' | 'scrub_secrets'> & { consecutive_failures: number; port: number; scrub_secrets: number };
type BackupRow = BackupTables['stored_backups'];

const toLocation = (r: LocationRow): BackupLocation => ({
  id: r.id,
  organizationId: r.organization_id,
  name: r.name,
  type: r.type as LocationType,
  config: JSON.parse(r.config) as LocationConfig,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toDevice = (r: DeviceRow): NetworkDevice => ({
  id: r.id,
  organizationId: r.organization_id,
  name: r.name,
  address: r.address,
  group: r.group_name,
  backupLocationId: r.backup_location_id,
  enabled: r.enabled === 1,
  stripPatterns: JSON.parse(r.strip_patterns) as string[],
  ignorePatterns: JSON.parse(r.ignore_patterns) as string[],
  collection: {
    model: r.model,
    port: Number(r.port),
    credentialId: r.credential_id,
    schedule: r.schedule,
    timezone: r.schedule_timezone,
    scrubSecrets: Number(r.scrub_secrets) === 1,
    commands: r.collect_commands === null ? null : (JSON.parse(r.collect_commands) as string[]),
  },
  status: {
    lastBackupAt: r.last_backup_at,
    lastChangedAt: r.last_changed_at,
    lastStatus: r.last_status as NetworkDevice['status']['lastStatus'],
    lastError: r.last_error,
    consecutiveFailures: Number(r.consecutive_failures),
  },
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toBackup = (r: BackupRow): StoredBackup => ({
  id: r.id,
  organizationId: r.organization_id,
  networkDeviceId: r.network_device_id,
  locationId: r.location_id,
  storageRef: r.storage_ref,
  sha256: r.sha256,
  size: Number(r.size),
  collectedAt: r.collected_at,
  storedAt: r.stored_at,
  taskIdentifier: r.task_identifier,
});

export interface DeviceWrite {
  name: string;
  address: string;
  group: string;
  backupLocationId: string;
  enabled: boolean;
  stripPatterns: string[];
  ignorePatterns: string[];
  collection: DeviceCollection;
}

const collectionColumns = (c: DeviceCollection) => ({
  model: c.model,
  port: c.port,
  credential_id: c.credentialId,
  schedule: c.schedule,
  schedule_timezone: c.timezone,
  scrub_secrets: c.scrubSecrets ? 1 : 0,
  collect_commands: c.commands === null ? null : JSON.stringify(c.commands),
});

/** The columns a create and an update of a network device both write. */
const deviceColumns = (d: DeviceWrite) => ({
  name: d.name,
  address: d.address,
  group_name: d.group,
  backup_location_id: d.backupLocationId,
  enabled: d.enabled ? 1 : 0,
  strip_patterns: JSON.stringify(d.stripPatterns),
  ignore_patterns: JSON.stringify(d.ignorePatterns),
  ...collectionColumns(d.collection),
});

/**
 * SQL of the backups index. Every query names the organization it is scoped to. Never opens a
 * transaction: the service that needs writes to commit together opens one (db/transaction.ts
 * `inTransaction`) and works on `repo.on(tx)`.
 */
export class BackupsRepository {
  readonly #db: BDb;
  readonly #handle: DbOrTx;
  readonly #dialect: DialectName;
  constructor(db: DbOrTx, dialect: DialectName = 'sqlite') {
    this.#handle = db;
    this.#dialect = dialect;
    this.#db = db.withTables<BackupTables>() as BDb;
  }

  /** The same repository on another handle (a transaction the service opened with inTransaction). */
  on(db: DbOrTx): BackupsRepository {
    return new BackupsRepository(db, this.#dialect);
  }

  /** The handle this repository runs on (services pass it to inTransaction). */
  get handle(): DbOrTx {
    return this.#handle;
  }

  // ---- locations ----
  async insertLocation(l: BackupLocation): Promise<void> {
    await this.#db
      .insertInto('backup_locations')
      .values({ id: l.id, organization_id: l.organizationId, name: l.name, type: l.type, config: JSON.stringify(l.config), created_at: l.createdAt, updated_at: l.updatedAt })
      .execute();
  }

  async updateLocation(l: BackupLocation): Promise<void> {
    await this.#db
      .updateTable('backup_locations')
      .set({ name: l.name, config: JSON.stringify(l.config), updated_at: l.updatedAt })
      .where('organization_id', '=', l.organizationId)
      .where('id', '=', l.id)
      .execute();
  }

  async deleteLocation(orgId: string, id: string): Promise<void> {
    await this.#db.deleteFrom('backup_locations').where('organization_id', '=', orgId).where('id', '=', id).execute();
  }

  async findLocation(orgId: string, id: string): Promise<BackupLocation | undefined> {
    const r = await this.#db.selectFrom('backup_locations').selectAll().where('organization_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return r && toLocation(r);
  }

  async findLocationByName(orgId: string, name: string): Promise<BackupLocation | undefined> {
    const r = await this.#db.selectFrom('backup_locations').selectAll().where('organization_id', '=', orgId).where('name', '=', name).executeTakeFirst();
    return r && toLocation(r);
  }

  async listLocations(orgId: string): Promise<BackupLocation[]> {
    const rows = await this.#db.selectFrom('backup_locations').selectAll().where('organization_id', '=', orgId).orderBy('name').execute();
    return rows.map(toLocation);
  }

  /** Organizations that have at least one backup location (the CLI's default --org). */
  async organizationsWithLocations(): Promise<string[]> {
    const rows = await this.#db.selectFrom('backup_locations').select('organization_id').distinct().orderBy('organization_id').execute();
    return rows.map((r) => r.organization_id);
  }

  /** Every location of every organization (index rebuilds). */
  async allLocations(): Promise<BackupLocation[]> {
    const rows = await this.#db.selectFrom('backup_locations').selectAll().orderBy('organization_id').orderBy('id').execute();
    return rows.map(toLocation);
  }

  async countDevicesAt(orgId: string, locationId: string): Promise<number> {
    const r = await this.#db
      .selectFrom('network_devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', orgId)
      .where('backup_location_id', '=', locationId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  // ---- network devices ----
  async insertDevice(id: string, orgId: string, d: DeviceWrite, now: string): Promise<void> {
    await this.#db
      .insertInto('network_devices')
      .values({
        id,
        organization_id: orgId,
        ...deviceColumns(d),
        created_at: now,
        updated_at: now,
      })
      .execute();
  }

  async updateDevice(orgId: string, id: string, d: DeviceWrite, now: string): Promise<void> {
    await this.#db
      .updateTable('network_devices')
      .set({
        ...deviceColumns(d),
        updated_at: now,
      })
      .where('organization_id', '=', orgId)
      .where('id', '=', id)
      .execute();
  }

  /** A device and its rows; call it inside a transaction (NetworkDevicesService does). */
  async deleteDevice(orgId: string, id: string): Promise<void> {
    const db = this.#db;
    await db.deleteFrom('stored_backups').where('organization_id', '=', orgId).where('network_device_id', '=', id).execute();
    await db.deleteFrom('network_devices').where('organization_id', '=', orgId).where('id', '=', id).execute();
  }

  async findDevice(orgId: string, id: string): Promise<NetworkDevice | undefined> {
    // Once per collection and per stored result: compiled once (db/statement-template.ts).
    const q = statementFor(this.#db, 'backups.findDevice', 2, (arg) => this.#db.selectFrom('network_devices').selectAll().where('organization_id', '=', arg(0)).where('id', '=', arg(1)));
    const r = (await this.#db.executeQuery(q.bind<DeviceRow>([orgId, id]))).rows[0];
    return r && toDevice(r);
  }

  /** Devices of the organization among `ids` (unknown ids left out), for batch enqueues (issue 10). */
  async findDevices(orgId: string, ids: readonly string[]): Promise<NetworkDevice[]> {
    const out: NetworkDevice[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.#db.selectFrom('network_devices').selectAll().where('organization_id', '=', orgId).where('id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of rows) out.push(toDevice(r as DeviceRow));
    }
    return out;
  }

  async findDeviceByName(orgId: string, name: string): Promise<NetworkDevice | undefined> {
    const r = await this.#db.selectFrom('network_devices').selectAll().where('organization_id', '=', orgId).where('name', '=', name).executeTakeFirst();
    return r && toDevice(r as DeviceRow);
  }

  async listDevices(orgId: string, limit: number, afterName: string | null): Promise<NetworkDevice[]> {
    let q = this.#db.selectFrom('network_devices').selectAll().where('organization_id', '=', orgId);
    if (afterName !== null) q = q.where('name', '>', afterName);
    const rows = await q.orderBy('name').limit(limit).execute();
    return rows.map((r) => toDevice(r as DeviceRow));
  }

  /** Enabled devices with a model, of every organization, by id (the collect scheduler pages through them). */
  async collectableDevices(afterId: string | null, limit: number): Promise<NetworkDevice[]> {
    let q = this.#db.selectFrom('network_devices').selectAll().where('enabled', '=', 1).where('model', 'is not', null);
    if (afterId !== null) q = q.where('id', '>', afterId);
    const rows = await q.orderBy('id').limit(limit).execute();
    return rows.map((r) => toDevice(r as DeviceRow));
  }

  async countDevicesWithCredential(orgId: string, credentialId: string): Promise<number> {
    const r = await this.#db
      .selectFrom('network_devices')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', orgId)
      .where('credential_id', '=', credentialId)
      .executeTakeFirstOrThrow();
    return Number(r.n);
  }

  async devicesAt(orgId: string, locationId: string): Promise<NetworkDevice[]> {
    const rows = await this.#db.selectFrom('network_devices').selectAll().where('organization_id', '=', orgId).where('backup_location_id', '=', locationId).execute();
    return rows.map((r) => toDevice(r as DeviceRow));
  }

  // ---- stored backups ----
  async findBackup(orgId: string, id: string): Promise<StoredBackup | undefined> {
    const r = await this.#db.selectFrom('stored_backups').selectAll().where('organization_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return r && toBackup(r);
  }

  /** Newest first, keyset on (collected_at, id): a page costs the same at version 10 and 10,000. */
  async history(orgId: string, deviceId: string, limit: number, before: { collectedAt: string; id: string } | null): Promise<StoredBackup[]> {
    let q = this.#db.selectFrom('stored_backups').selectAll().where('organization_id', '=', orgId).where('network_device_id', '=', deviceId);
    if (before) {
      q = q.where((eb) => eb.or([eb('collected_at', '<', before.collectedAt), eb.and([eb('collected_at', '=', before.collectedAt), eb('id', '<', before.id)])]));
    }
    const rows = await q.orderBy('collected_at', 'desc').orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toBackup);
  }

  /** The version stored just before `b` for the same device, if any. */
  async previous(b: StoredBackup): Promise<StoredBackup | undefined> {
    const [r] = await this.history(b.organizationId, b.networkDeviceId, 1, { collectedAt: b.collectedAt, id: b.id });
    return r;
  }

  // ---- index reconciliation (rebuild-index --scope backups) ----

  /** Rows of a location in storage-ref order (code points: SQLite BINARY, PostgreSQL COLLATE "C"), keyset pages. */
  async rowsByRef(locationId: string, afterRef: string | null, limit: number): Promise<StoredBackup[]> {
    const ref = this.#dialect === 'postgres' ? sql<string>`storage_ref COLLATE "C"` : sql<string>`storage_ref`;
    let q = this.#db.selectFrom('stored_backups').selectAll().where('location_id', '=', locationId);
    if (afterRef !== null) q = q.where(ref, '>', afterRef);
    const rows = await q.orderBy(ref).limit(limit).execute();
    return rows.map(toBackup);
  }

  async hasRowsAt(locationId: string): Promise<boolean> {
    const r = await this.#db.selectFrom('stored_backups').select('id').where('location_id', '=', locationId).limit(1).executeTakeFirst();
    return r !== undefined;
  }

  /** Of `refs`, those a row of the location holds now. */
  async refsIndexed(locationId: string, refs: readonly string[]): Promise<Set<string>> {
    const out = new Set<string>();
    for (let i = 0; i < refs.length; i += 500) {
      const rows = await this.#db.selectFrom('stored_backups').select('storage_ref').where('location_id', '=', locationId).where('storage_ref', 'in', refs.slice(i, i + 500)).execute();
      for (const r of rows) out.add(r.storage_ref);
    }
    return out;
  }

  /** id → (storage ref, stored_at) of the rows that still exist. */
  async rowStamps(ids: readonly string[]): Promise<Map<string, { storageRef: string; storedAt: string }>> {
    const out = new Map<string, { storageRef: string; storedAt: string }>();
    for (let i = 0; i < ids.length; i += 500) {
      const rows = await this.#db.selectFrom('stored_backups').select(['id', 'storage_ref', 'stored_at']).where('id', 'in', ids.slice(i, i + 500)).execute();
      for (const r of rows) out.set(r.id, { storageRef: r.storage_ref, storedAt: r.stored_at });
    }
    return out;
  }

  /** Inserts rows, leaving alone any whose task identifier is indexed already. Returns the rows added. */
  async insertBackups(rows: StoredBackup[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < rows.length; i += 500) {
      const added = await this.#db
        .insertInto('stored_backups')
        .values(
          rows.slice(i, i + 500).map((b) => ({
            id: b.id,
            organization_id: b.organizationId,
            network_device_id: b.networkDeviceId,
            location_id: b.locationId,
            storage_ref: b.storageRef,
            sha256: b.sha256,
            size: b.size,
            collected_at: b.collectedAt,
            stored_at: b.storedAt,
            task_identifier: b.taskIdentifier,
          })),
        )
        .onConflict((oc) => oc.column('task_identifier').doNothing())
        .returning('id')
        .execute();
      n += added.length;
    }
    return n;
  }

  /** Rewrites what storage says of rows not written since `unchangedSince` (their stored_at). Returns rows updated. */
  async updateBackups(changes: ReadonlyArray<{ id: string; sha256: string; size: number; collectedAt: string }>, unchangedSince: string): Promise<number> {
    let n = 0;
    for (const c of changes) {
      const r = await this.#db
        .updateTable('stored_backups')
        .set({ sha256: c.sha256, size: c.size, collected_at: c.collectedAt })
        .where('id', '=', c.id)
        .where('stored_at', '<', unchangedSince)
        .executeTakeFirst();
      n += Number(r.numUpdatedRows);
    }
    return n;
  }

  /** Deletes rows not written since `unchangedSince`. Returns rows deleted. */
  async deleteBackupsUnchanged(ids: readonly string[], unchangedSince: string): Promise<number> {
    let n = 0;
    for (let i = 0; i < ids.length; i += 500) {
      const r = await this.#db.deleteFrom('stored_backups').where('id', 'in', ids.slice(i, i + 500)).where('stored_at', '<', unchangedSince).executeTakeFirst();
      n += Number(r.numDeletedRows);
    }
    return n;
  }

  /** Drops the rows of versions removed from storage (fs pruning). */
  async deleteBackupsByRefs(orgId: string, locationId: string, refs: readonly string[]): Promise<number> {
    let n = 0;
    for (let i = 0; i < refs.length; i += 500) {
      const r = await this.#db
        .deleteFrom('stored_backups')
        .where('organization_id', '=', orgId)
        .where('location_id', '=', locationId)
        .where('storage_ref', 'in', refs.slice(i, i + 500))
        .executeTakeFirst();
      n += Number(r.numDeletedRows);
    }
    return n;
  }


  /**
   * Applies one storage outcome exactly once (issue 9: idempotent by task_identifier). The outcome row is
   * inserted first in the same transaction as the index writes: a second delivery finds it and changes
   * nothing, whether the first consumer acknowledged its entry or was killed right after committing.
   * Call it inside a transaction (BackupsPipeline does), so the outcome row and the index writes commit together.
   * @returns false when this task identifier was applied before.
   */
  async applyOutcome(o: StorageOutcome): Promise<boolean> {
    const db = this.#db;
    const inserted = await db
      .insertInto('backup_task_outcomes')
      .values({ task_identifier: o.taskIdentifier, network_device_id: o.networkDeviceId, outcome: o.error === null ? 'stored' : 'failed', processed_at: o.processedAt })
      .onConflict((oc) => oc.column('task_identifier').doNothing())
      .returning('task_identifier')
      .executeTakeFirst();
    if (!inserted) return false;
    const device = await db
      .selectFrom('network_devices')
      .select('id')
      .where('organization_id', '=', o.organizationId)
      .where('id', '=', o.networkDeviceId)
      .executeTakeFirst();
    if (!device) return true; // deleted meanwhile: nothing to index
    const c = o.collectedAt;
    const later = (col: 'last_backup_at' | 'last_changed_at') => sql<string>`CASE WHEN ${sql.ref(col)} IS NULL OR ${sql.ref(col)} < ${c} THEN ${c} ELSE ${sql.ref(col)} END`;
    if (o.stored) {
      if (o.stored.changed) {
        await db
          .insertInto('stored_backups')
          .values({
            id: o.stored.backupId,
            organization_id: o.organizationId,
            network_device_id: o.networkDeviceId,
            location_id: o.locationId,
            storage_ref: o.stored.storageRef,
            sha256: o.stored.sha256,
            size: o.stored.size,
            collected_at: c,
            stored_at: o.processedAt,
            task_identifier: o.taskIdentifier,
          })
          .onConflict((oc) => oc.column('task_identifier').doNothing())
          .execute();
      }
      await db
        .updateTable('network_devices')
        .set({
          last_backup_at: later('last_backup_at'),
          ...(o.stored.changed ? { last_changed_at: later('last_changed_at') } : {}),
          last_status: 'success',
          last_error: null,
          consecutive_failures: 0,
        })
        .where('id', '=', o.networkDeviceId)
        .execute();
    } else {
      await db
        .updateTable('network_devices')
        .set((eb) => ({ last_status: 'failed', last_error: o.error, consecutive_failures: eb('consecutive_failures', '+', 1) }))
        .where('id', '=', o.networkDeviceId)
        .execute();
    }
    return true;
  }
}