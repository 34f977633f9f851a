import type { Kysely } from 'kysely';

/**
 * The embedded task queue (issue 3, database backend): one row per enqueued task, kept after it finishes
 * as its result until pruned, and one row per periodic schedule. Named background_* so they are not
 * confused with the synced to-do tasks of records sync. Append-only: never edit once released.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .createTable('background_tasks')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('task_name', 'text', (c) => c.notNull())
    .addColumn('queue', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('args', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('backoff_base_ms', 'bigint', (c) => c.notNull())
    .addColumn('backoff_cap_ms', 'bigint', (c) => c.notNull())
    .addColumn('backoff_jitter', 'integer', (c) => c.notNull())
    .addColumn('timeout_ms', 'bigint')
    // NULLs never collide in a UNIQUE column on either dialect, so tasks without a key are unconstrained.
    .addColumn('idempotency_key', 'text', (c) => c.unique())
    .addColumn('enqueued_at', 'text', (c) => c.notNull())
    .addColumn('run_after', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text')
    .addColumn('last_attempted_at', 'text')
    .addColumn('finished_at', 'text')
    .addColumn('errors', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('return_value', 'text')
    .addColumn('dead_lettered', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('cancelled', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('worker_id', 'text')
    .addColumn('lease_expires_at', 'text')
    .addColumn('progress_fraction', 'double precision')
    .addColumn('progress_message', 'text')
    .addColumn('progress_at', 'text')
    .execute();
  // The claim: WHERE status = 'READY' AND run_after <= now ORDER BY priority DESC, run_after LIMIT n. The
  // index has the same mixed directions, so a claim reads n rows instead of sorting every READY one.
  await db.schema
    .createIndex('background_tasks_claim_idx')
    .on('background_tasks')
    .columns(['status', 'priority desc', 'run_after', 'id'])
    .execute();
  // Reaping expired leases: WHERE status = 'RUNNING' AND lease_expires_at < now.
  await db.schema.createIndex('background_tasks_lease_idx').on('background_tasks').columns(['status', 'lease_expires_at']).execute();
  // Pruning and listings.
  await db.schema.createIndex('background_tasks_finished_idx').on('background_tasks').column('finished_at').execute();
  await db.schema.createIndex('background_tasks_enqueued_idx').on('background_tasks').column('enqueued_at').execute();

  await db.schema
    .createTable('background_task_schedules')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('cron', 'text', (c) => c.notNull())
    .addColumn('timezone', 'text', (c) => c.notNull())
    .addColumn('task_name', 'text', (c) => c.notNull())
    .addColumn('template', 'text', (c) => c.notNull())
    // The tick to fire next; advancing it with compare-and-set is what makes a tick fire exactly once.
    .addColumn('next_tick_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
