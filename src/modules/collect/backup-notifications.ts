import type { StorageOutcome } from '../backups/backups.types.ts';
import type { NetworkDevicesService } from '../backups/network-devices.service.ts';

/**
 * backup.changed / backup.failed webhooks (issue 10). Called by the backups pipeline once per outcome it
 * applies for the first time (a redelivered stream entry does not call it again), so each event is
 * dispatched once; delivery then retries through the `webhooks.deliver` task.
 * - backup.changed: a new version was stored (its content differs from the previous one, ignore_patterns aside);
 * - backup.failed: the device's Nth consecutive failure (N = STORMVAULT_BACKUP_FAILED_AFTER), once per streak.
 */
export class BackupNotifications {
  constructor(
    private readonly deps: {
      devices: NetworkDevicesService;
      dispatch: (organizationId: string, event: 'backup.changed' | 'backup.failed', data: Record<string, unknown>) => Promise<unknown>;
      failedAfter: number;
    },
  ) {}

  async onOutcome(o: StorageOutcome): Promise<void> {
    if (!o.stored?.changed && o.error === null) return;
    const ctx = { organizationId: o.organizationId, userId: 'collector', role: 'member' as const };
    const device = await this.deps.devices.get(ctx, o.networkDeviceId).catch(() => undefined);
    if (!device) return;
    const base = { network_device_id: device.id, network_device: device.name, group: device.group, task_identifier: o.taskIdentifier, collected_at: o.collectedAt };
    if (o.stored?.changed) {
      await this.deps.dispatch(o.organizationId, 'backup.changed', { ...base, stored_backup_id: o.stored.backupId, sha256: o.stored.sha256, size: o.stored.size });
    } else if (o.error !== null && device.status.consecutiveFailures === this.deps.failedAfter) {
      await this.deps.dispatch(o.organizationId, 'backup.failed', { ...base, error: o.error, consecutive_failures: device.status.consecutiveFailures });
    }
  }
}
