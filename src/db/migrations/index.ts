import type { Migration } from 'kysely';
import * as m0001 from './0001_core.ts';
import * as m0002 from './0002_tasks.ts';
import * as m0003 from './0003_records_sync.ts';
import * as m0004 from './0004_index_sync.ts';
import * as m0005 from './0005_auth_tokens.ts';
import * as m0006 from './0006_locks.ts';
import * as m0007 from './0007_sync_per_organization.ts';
import * as m0008 from './0008_usernames_rate_limits.ts';
import * as m0010 from './0010_webdav.ts';
import * as m0011 from './0011_publishing.ts';
import * as m0012 from './0012_streams_backups.ts';

/**
 * Every migration, in order. Append-only: add a new file and a line here; never edit a released one.
 * Names sort lexically, so keep the four-digit prefix.
 */
export const migrations: Record<string, Migration> = {
  '0001_core': m0001,
  '0002_tasks': m0002,
  '0003_records_sync': m0003,
  '0004_index_sync': m0004,
  '0005_auth_tokens': m0005,
  '0006_locks': m0006,
  '0007_sync_per_organization': m0007,
  '0008_usernames_rate_limits': m0008,
  '0010_webdav': m0010,
  '0011_publishing': m0011,
  '0012_streams_backups': m0012,
};
