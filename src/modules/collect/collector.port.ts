import type { DeviceModel } from './collect-model.schema.ts';

/**
 * The collection port (issue 10): log in to one network device, run its model's commands, hand back the
 * cleaned configuration or why it failed. The collect worker calls it and puts either outcome on the
 * device results stream (issue 9); it stores nothing and never throws for a device's fault.
 */
export interface Collector {
  /** `signal` aborting ends the collection at once with a `timeout` failure (the task's hard limit, a cancel). */
  collect(target: CollectTarget, model: DeviceModel, credential: CollectCredential, signal?: AbortSignal): Promise<CollectResult>;
}

/** Where a failure happened, as the device status reports it. */
export type CollectStage = 'connect' | 'auth' | 'prompt' | 'command' | 'timeout';

export type CollectFailureCode =
  | 'connect_failed'
  | 'host_key_mismatch'
  | 'auth_failed'
  | 'enable_failed'
  | 'prompt_not_found'
  | 'command_failed'
  | 'connection_closed'
  | 'output_too_large'
  | 'timeout'
  /** Nothing to collect with: the device's model, credential or address is missing (collect service). */
  | 'not_configured';

export interface CollectTarget {
  readonly host: string;
  readonly port: number;
  /**
   * The fingerprint stored for this device (`SHA256:<base64>`), or null on first use. A different key
   * fails with host_key_mismatch; the caller stores `hostKey` from the result when this was null.
   */
  readonly knownHostKey: string | null;
  /** Apply the model's `secrets` (the device's scrub_secrets, on by default). */
  readonly scrubSecrets: boolean;
  /** Replaces the model's commands (the generic exec model: "run the given commands"). */
  readonly commands?: readonly string[];
}

/** Decrypted only for the length of one collection; never logged. */
export interface CollectCredential {
  readonly username: string;
  readonly password?: string;
  readonly privateKey?: string;
  readonly passphrase?: string;
  readonly enablePassword?: string;
}

export interface CollectTimeouts {
  /** TCP connect + SSH handshake + authentication. */
  readonly connectMs: number;
  /** Each wait for a prompt or for an exec command to finish. */
  readonly commandMs: number;
  /** The whole device, login to logout: a hung device never holds a worker slot longer (issue 10). */
  readonly deviceMs: number;
}

export const DEFAULT_COLLECT_TIMEOUTS: CollectTimeouts = { connectMs: 10_000, commandMs: 60_000, deviceMs: 300_000 };

export type CollectResult =
  | { readonly ok: true; readonly content: string; readonly hostKey: string }
  | {
      readonly ok: false;
      readonly stage: CollectStage;
      readonly code: CollectFailureCode;
      readonly message: string;
      /** The key the device presented, when the handshake got that far (to show on host_key_mismatch). */
      readonly hostKey: string | null;
    };
