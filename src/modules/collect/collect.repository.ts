import type { Kysely } from 'kysely';
import type { Database, Db } from '../../db/schema.ts';
import { statementFor } from '../../db/statement-template.ts';
import type { CollectOrgSettings, Credential, DeviceCollectState } from './collect.types.ts';

// Row types of migration 0013, kept beside their SQL (DESIGN.md: rows stay in repositories).
type CollectTables = {
  collect_credentials: {
    id: string;
    organization_id: string;
    name: string;
    username: string;
    secrets_enc: string;
    has_password: number;
    has_private_key: number;
    has_enable_password: number;
    created_at: string;
    updated_at: string;
  };
  collect_device_state: {
    network_device_id: string;
    organization_id: string;
    host_key: string | null;
    pending_host_key: string | null;
    last_task_id: string | null;
    last_attempt_at: string | null;
    last_success_at: string | null;
    last_stage: string | null;
    last_code: string | null;
    last_message: string | null;
  };
  collect_org_settings: { organization_id: string; default_schedule: string; timezone: string; updated_at: string };
};
type CDb = Kysely<Database & CollectTables>;
type CredentialRow = CollectTables['collect_credentials'];
type StateRow = CollectTables['collect_device_state'];

const toCredential = (r: CredentialRow): Credential => ({
  id: r.id,
  organizationId: r.organization_id,
  name: r.name,
  username: r.username,
  hasPassword: Number(r.has_password) === 1,
  hasPrivateKey: Number(r.has_private_key) === 1,
  hasEnablePassword: Number(r.has_enable_password) === 1,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

const toState = (r: StateRow): DeviceCollectState => ({
  networkDeviceId: r.network_device_id,
  hostKey: r.host_key,
  pendingHostKey: r.pending_host_key,
  lastTaskId: r.last_task_id,
  lastAttemptAt: r.last_attempt_at,
  lastSuccessAt: r.last_success_at,
  lastStage: r.last_stage,
  lastCode: r.last_code,
  lastMessage: r.last_message,
});

export interface CredentialWrite {
  name: string;
  username: string;
  secretsEnc: string;
  hasPassword: boolean;
  hasPrivateKey: boolean;
  hasEnablePassword: boolean;
}

/** The columns a create and an update of a credential both write. */
const credentialColumns = (c: CredentialWrite) => ({
  name: c.name,
  username: c.username,
  secrets_enc: c.secretsEnc,
  has_password: c.hasPassword ? 1 : 0,
  has_private_key: c.hasPrivateKey ? 1 : 0,
  has_enable_password: c.hasEnablePassword ? 1 : 0,
});

/** SQL of credentials, per-device collection state and org settings. Every query names its organization. */
export class CollectRepository {
  readonly #db: CDb;
  constructor(db: Db) {
    this.#db = db.withTables<CollectTables>();
  }

  // ---- credentials ----
  async insertCredential(id: string, orgId: string, c: CredentialWrite, now: string): Promise<void> {
    await this.#db
      .insertInto('collect_credentials')
      .values({
        id,
        organization_id: orgId,
        ...credentialColumns(c),
        created_at: now,
        updated_at: now,
      })
      .execute();
  }

  async updateCredential(orgId: string, id: string, c: CredentialWrite, now: string): Promise<void> {
    await this.#db
      .updateTable('collect_credentials')
      .set({
        ...credentialColumns(c),
        updated_at: now,
      })
      .where('organization_id', '=', orgId)
      .where('id', '=', id)
      .execute();
  }

  async deleteCredential(orgId: string, id: string): Promise<boolean> {
    const r = await this.#db.deleteFrom('collect_credentials').where('organization_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async findCredential(orgId: string, id: string): Promise<Credential | undefined> {
    const r = await this.#db.selectFrom('collect_credentials').selectAll().where('organization_id', '=', orgId).where('id', '=', id).executeTakeFirst();
    return r && toCredential(r);
  }

  async findCredentialByName(orgId: string, name: string): Promise<Credential | undefined> {
    const r = await this.#db.selectFrom('collect_credentials').selectAll().where('organization_id', '=', orgId).where('name', '=', name).executeTakeFirst();
    return r && toCredential(r);
  }

  /** The sealed secrets of one credential (only the collect service opens them). */
  async credentialSecrets(orgId: string, id: string): Promise<{ credential: Credential; secretsEnc: string } | undefined> {
    // Once per collected device: compiled once (db/statement-template.ts).
    const q = statementFor(this.#db, 'collect.credentialSecrets', 2, (arg) =>
      this.#db.selectFrom('collect_credentials').selectAll().where('organization_id', '=', arg(0)).where('id', '=', arg(1)),
    );
    const r = (await this.#db.executeQuery(q.bind<CredentialRow>([orgId, id]))).rows[0];
    return r && { credential: toCredential(r), secretsEnc: r.secrets_enc };
  }

  async listCredentials(orgId: string): Promise<Credential[]> {
    const rows = await this.#db.selectFrom('collect_credentials').selectAll().where('organization_id', '=', orgId).orderBy('name').execute();
    return rows.map(toCredential);
  }

  // ---- per-device state ----
  async findState(orgId: string, deviceId: string): Promise<DeviceCollectState | undefined> {
    // Once per collected device: compiled once (db/statement-template.ts).
    const q = statementFor(this.#db, 'collect.findState', 2, (arg) =>
      this.#db.selectFrom('collect_device_state').selectAll().where('organization_id', '=', arg(0)).where('network_device_id', '=', arg(1)),
    );
    const r = (await this.#db.executeQuery(q.bind<StateRow>([orgId, deviceId]))).rows[0];
    return r && toState(r);
  }

  /** Creates the row or changes the given columns (one statement: safe against a concurrent first write). */
  async upsertState(orgId: string, deviceId: string, patch: Partial<Omit<StateRow, 'network_device_id' | 'organization_id'>>): Promise<void> {
    await this.#db
      .insertInto('collect_device_state')
      .values({ network_device_id: deviceId, organization_id: orgId, ...patch })
      .onConflict((oc) => oc.column('network_device_id').doUpdateSet(patch))
      .execute();
  }

  /**
   * A successful collection in ONE statement (issue 10, bench/collect): trusts `hostKey` when no key is
   * stored yet (trust on first use) and writes the success `patch`, but only while the stored key is
   * none or this same key. Returns the key stored afterwards: `hostKey` when written; otherwise the row
   * is left as it was and the key another collection (or an admin) stored meanwhile is returned.
   */
  async recordSuccess(orgId: string, deviceId: string, hostKey: string, patch: Partial<Omit<StateRow, 'network_device_id' | 'organization_id' | 'host_key'>>): Promise<string> {
    // Once per collected device: compiled once per set of patched columns (db/statement-template.ts).
    // Arguments: 0 device, 1 organization, 2 host key, then the patch's values in its key order.
    const keys = Object.keys(patch) as (keyof typeof patch)[];
    const q = statementFor(this.#db, `collect.recordSuccess:${keys.join(',')}`, 3 + keys.length, (arg) => {
      const set = Object.fromEntries(keys.map((k, i) => [k, arg(3 + i)])) as typeof patch;
      return this.#db
        .insertInto('collect_device_state')
        .values({ network_device_id: arg(0), organization_id: arg(1), host_key: arg(2), ...set })
        .onConflict((oc) =>
          oc
            .column('network_device_id')
            .doUpdateSet({ ...set, host_key: arg(2) })
            .where((eb) => eb.or([eb('collect_device_state.host_key', 'is', null), eb('collect_device_state.host_key', '=', arg(2))])),
        )
        .returning('host_key');
    });
    const row = (await this.#db.executeQuery(q.bind<{ host_key: string | null }>([deviceId, orgId, hostKey, ...keys.map((k) => patch[k])]))).rows[0];
    if (row) return row.host_key ?? hostKey;
    return (await this.findState(orgId, deviceId))?.hostKey ?? hostKey;
  }

  /** Replaces the trusted key by the pending one, only if the pending one is still `expected`. */
  async acceptPendingHostKey(orgId: string, deviceId: string, expected: string): Promise<boolean> {
    const r = await this.#db
      .updateTable('collect_device_state')
      .set({ host_key: expected, pending_host_key: null })
      .where('organization_id', '=', orgId)
      .where('network_device_id', '=', deviceId)
      .where('pending_host_key', '=', expected)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  // ---- organization settings ----
  async findOrgSettings(orgId: string): Promise<CollectOrgSettings | undefined> {
    const r = await this.#db.selectFrom('collect_org_settings').selectAll().where('organization_id', '=', orgId).executeTakeFirst();
    return r && { defaultSchedule: r.default_schedule, timezone: r.timezone };
  }

  async allOrgSettings(): Promise<Map<string, CollectOrgSettings>> {
    const rows = await this.#db.selectFrom('collect_org_settings').selectAll().execute();
    return new Map(rows.map((r) => [r.organization_id, { defaultSchedule: r.default_schedule, timezone: r.timezone }]));
  }

  async upsertOrgSettings(orgId: string, s: CollectOrgSettings, now: string): Promise<void> {
    await this.#db
      .insertInto('collect_org_settings')
      .values({ organization_id: orgId, default_schedule: s.defaultSchedule, timezone: s.timezone, updated_at: now })
      .onConflict((oc) => oc.column('organization_id').doUpdateSet({ default_schedule: s.defaultSchedule, timezone: s.timezone, updated_at: now }))
      .execute();
  }
}
