import type { Migration } from 'kysely';
import { migrations as through0012 } from './migrations/index.ts';
import * as m0013 from './migrations/0013_collection.ts';
import * as m0017 from './migrations/0017_backups_rebuild_order.ts';
import * as m0018 from './migrations/0018_tasks_partial_indexes.ts';

/**
 * Every migration the migrator runs, in order: the list of migrations/index.ts (0001–0012, frozen as it
 * landed, like the migration files beside it) and every migration added since, one import and one line
 * here each. Append-only: add a new file under migrations/ and a line at the end; never edit, rename or
 * remove a migration that has landed, nor the list in migrations/index.ts. Names sort lexically, so keep
 * the four-digit prefix; numbers may have gaps (the migrator allows unordered names).
 */
export const migrations: Record<string, Migration> = {
  ...through0012,
  '0013_collection': m0013,
  '0017_backups_rebuild_order': m0017,
  '0018_tasks_partial_indexes': m0018,
};
