import type { Logger } from '../../logger.ts';
import type { VolumeState } from '../../storage/volume-probe.ts';

/** What the health check reads, as narrow ports (the database and the storage volume). */
export interface HealthPorts {
  pingDatabase(): Promise<void>;
  probeStorage(): Promise<VolumeState>;
  minFreeBytes: number;
  logger: Logger;
}

/** The full report, for administrators. Problems are fixed sentences: raw errors (paths, SQL) go to the log only. */
export interface HealthReport {
  ok: boolean;
  database: { ok: boolean; problem?: string };
  storage: { ok: boolean; writable: boolean; free_bytes: number | null; min_free_bytes: number; problem?: string };
}

/**
 * Readiness of the server (issue 8: the route no longer runs SQL or reads the disk itself; issue 12: it no
 * longer leaks error text and paths, nor writes a probe file per request).
 */
export class HealthService {
  constructor(private readonly ports: HealthPorts) {}

  async check(): Promise<HealthReport> {
    const [database, storage] = await Promise.all([this.database(), this.storage()]);
    return { ok: database.ok && storage.ok, database, storage };
  }

  private async database(): Promise<HealthReport['database']> {
    try {
      await this.ports.pingDatabase();
      return { ok: true };
    } catch (err) {
      this.ports.logger.error({ err }, 'health: database check failed');
      return { ok: false, problem: 'the database does not answer' };
    }
  }

  private async storage(): Promise<HealthReport['storage']> {
    const min = this.ports.minFreeBytes;
    try {
      const { writable, freeBytes } = await this.ports.probeStorage();
      if (!writable) return { ok: false, writable, free_bytes: freeBytes, min_free_bytes: min, problem: 'the storage root is not writable by the server' };
      if (freeBytes < min) {
        return { ok: false, writable, free_bytes: freeBytes, min_free_bytes: min, problem: 'free space is below the configured floor (STORMVAULT_MIN_FREE_BYTES)' };
      }
      return { ok: true, writable, free_bytes: freeBytes, min_free_bytes: min };
    } catch (err) {
      this.ports.logger.error({ err }, 'health: storage check failed');
      return { ok: false, writable: false, free_bytes: null, min_free_bytes: min, problem: 'the storage root cannot be read' };
    }
  }
}
