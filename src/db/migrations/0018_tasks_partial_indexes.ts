import { sql, type Kysely } from 'kysely';
import { isPostgres } from '../database.ts';

/**
 * The task table's state indexes cover only the rows their queries ask for (bench/collect, issue 10).
 * 0002 indexed EVERY row under its status (claim: status, priority, run_after, id; leases: status,
 * lease_expires_at) and every row's finished_at (NULL until the end), so each claim moved a row between two
 * status regions of two indexes and each completion did it again plus the NULL → time move: about 18
 * pages (75 KB of WAL, then the checkpoint's copy) per claimed-and-completed task on SQLite, once a task.
 * Partial indexes hold a row only while a query can want it:
 * - claim: READY rows only (claim deletes one entry; completion touches nothing);
 * - lease: RUNNING rows only (claim inserts one entry, the end of the attempt deletes it);
 * - finished: finished rows only (pruning asks `finished_at < cutoff`, which implies NOT NULL).
 * The queries name the status as a literal (tasks.repository.ts), which is what lets a partial index be
 * used. Same names as before, so nothing else refers to a changed name.
 *
 * SQLite only, for now: measured there (bench/collect: 141 -> 105 KB written a collected device, 62 -> 45
 * write calls; 3,000 staggered tasks: 0.52-0.55 -> 0.45-0.47 ms of CPU a task). PostgreSQL keeps 0002's
 * indexes (the literal statuses use them as before) until bench:tasks can be compared on a quiet machine:
 * under a load average of 9 its two A/B runs disagreed (docs/tasks.md, Performance).
 */
export async function up(db: Kysely<any>): Promise<void> {
  if (isPostgres(db)) return;
  await sql`DROP INDEX background_tasks_claim_idx`.execute(db);
  await sql`CREATE INDEX background_tasks_claim_idx ON background_tasks (priority DESC, run_after, id) WHERE status = 'READY'`.execute(db);
  await sql`DROP INDEX background_tasks_lease_idx`.execute(db);
  await sql`CREATE INDEX background_tasks_lease_idx ON background_tasks (lease_expires_at) WHERE status = 'RUNNING'`.execute(db);
  await sql`DROP INDEX background_tasks_finished_idx`.execute(db);
  await sql`CREATE INDEX background_tasks_finished_idx ON background_tasks (finished_at) WHERE finished_at IS NOT NULL`.execute(db);
}

export async function down(): Promise<void> {
  throw new Error('migrations are append-only; restore a backup instead of migrating down');
}
