/** Domain types of the collect module (issue 10). */

/** A login for network devices. Its secrets are write-only: only these flags say which are set. */
export interface Credential {
  id: string;
  organizationId: string;
  name: string;
  username: string;
  hasPassword: boolean;
  hasPrivateKey: boolean;
  hasEnablePassword: boolean;
  createdAt: string;
  updatedAt: string;
}

/** What collect_credentials.secrets_enc holds once opened (never logged, never returned). */
export interface CredentialSecrets {
  password?: string;
  private_key?: string;
  passphrase?: string;
  enable_password?: string;
}

/** Per device: the trusted SSH host key and how the last collection ended. */
export interface DeviceCollectState {
  networkDeviceId: string;
  /** `SHA256:…` trusted on first use; null until the first successful handshake. */
  hostKey: string | null;
  /** The key the device presented when it no longer matched `hostKey`: what accept-host-key trusts. */
  pendingHostKey: string | null;
  lastTaskId: string | null;
  lastAttemptAt: string | null;
  lastSuccessAt: string | null;
  /** connect | auth | prompt | command | timeout, or null after a success. */
  lastStage: string | null;
  lastCode: string | null;
  lastMessage: string | null;
}

export interface CollectOrgSettings {
  /** 5-field cron; `0 * * * *` when the organization set none. */
  defaultSchedule: string;
  timezone: string;
}

export const DEFAULT_ORG_SETTINGS: CollectOrgSettings = Object.freeze({ defaultSchedule: '0 * * * *', timezone: 'UTC' });

/** Arguments of the `collect.device` task. */
export interface CollectTaskArgs {
  organization_id: string;
  network_device_id: string;
  /** schedule | manual (backup-now, CLI). */
  trigger: 'schedule' | 'manual';
}

/** What a `collect.device` task returns: its outcome, as it went onto `device:results`. */
export type CollectTaskResult =
  | { ok: true; task_identifier: string; bytes: number; host_key: string; host_key_trusted_now: boolean }
  | { ok: false; task_identifier: string; stage: string; code: string; message: string }
  | { ok: false; skipped: 'deleted' | 'disabled' | 'no_model' };
