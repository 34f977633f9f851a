import type { Kysely } from 'kysely';

/**
 * Backups, part 2 (issue 10): collection over SSH.
 *
 * - `network_devices` gains what a collector needs: `model` (a device model name, null = push only),
 *   `port`, `credential_id`, the device's own `schedule` + `schedule_timezone` (null = the organization's
 *   default), `scrub_secrets` and `collect_commands` (JSON list replacing the model's commands, for the
 *   generic exec model). Added columns, so part 1's rows keep working unchanged.
 * - `collect_credentials`: login secrets sealed with AES-256-GCM (src/lib/secret-box.ts, bound to the
 *   row id); only `has_*` flags are readable.
 * - `collect_device_state`: per device, the trusted host key (trust on first use), the key presented at
 *   the last mismatch (what accept-host-key trusts), and the last collection's stage / code / message.
 * - `collect_org_settings`: an organization's default schedule (`0 * * * *` in UTC when absent).
 * Append-only: never edit once released.
 */
export async function up(db: Kysely<any>): Promise<void> {
  // One ALTER per column: SQLite adds a single column per statement.
  await db.schema.alterTable('network_devices').addColumn('model', 'text').execute();
  await db.schema.alterTable('network_devices').addColumn('port', 'integer', (c) => c.notNull().defaultTo(22)).execute();
  await db.schema.alterTable('network_devices').addColumn('credential_id', 'text').execute();
  await db.schema.alterTable('network_devices').addColumn('schedule', 'text').execute();
  await db.schema.alterTable('network_devices').addColumn('schedule_timezone', 'text').execute();
  await db.schema.alterTable('network_devices').addColumn('scrub_secrets', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.alterTable('network_devices').addColumn('collect_commands', 'text').execute();
  await db.schema.createIndex('network_devices_credential_idx').on('network_devices').columns(['organization_id', 'credential_id']).execute();

  await db.schema
    .createTable('collect_credentials')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('organization_id', 'text', (c) => c.notNull().references('organizations.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('username', 'text', (c) => c.notNull())
    // SecretBox.seal of a JSON object {password?, private_key?, passphrase?, enable_password?}.
    .addColumn('secrets_enc', 'text', (c) => c.notNull())
    .addColumn('has_password', 'integer', (c) => c.notNull())
    .addColumn('has_private_key', 'integer', (c) => c.notNull())
    .addColumn('has_enable_password', 'integer', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('collect_credentials_org_name_uq', ['organization_id', 'name'])
    .execute();

  await db.schema
    .createTable('collect_device_state')
    .addColumn('network_device_id', 'text', (c) => c.primaryKey().references('network_devices.id').onDelete('cascade'))
    .addColumn('organization_id', 'text', (c) => c.notNull())
    .addColumn('host_key', 'text')
    .addColumn('pending_host_key', 'text')
    .addColumn('last_task_id', 'text')
    .addColumn('last_attempt_at', 'text')
    .addColumn('last_success_at', 'text')
    .addColumn('last_stage', 'text')
    .addColumn('last_code', 'text')
    .addColumn('last_message', 'text')
    .execute();

  await db.schema
    .createTable('collect_org_settings')
    .addColumn('organization_id', 'text', (c) => c.primaryKey().references('organizations.id').onDelete('cascade'))
    .addColumn('default_schedule', 'text', (c) => c.notNull())
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
