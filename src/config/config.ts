import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isIP } from 'node:net';
import * as z from '../lib/zod.ts';
import { scheduleProblem } from '../lib/cron.ts';
import { AddressSet } from '../lib/ip-ranges.ts';
import { ConfigError } from './config-error.ts';

/**
 * One schema for all configuration, validated once at boot. Sources, later wins:
 * defaults < JSON config file (STORMVAULT_CONFIG_FILE, keys named like the env vars) < environment.
 * Every bad key is reported at once (ConfigError.problems), then the result is frozen and passed down;
 * no module reads process.env on its own.
 */
export interface Config {
  readonly dataDir: string;
  readonly storageRoot: string;
  readonly database: { readonly url: string; readonly dialect: 'sqlite' | 'postgres' };
  readonly server: {
    readonly host: string;
    readonly port: number;
    readonly publicUrl: string;
    readonly bodyLimitBytes: number;
    /**
     * Fastify's `trustProxy`: which peers' X-Forwarded-For is believed for the client IP (throttle keys,
     * logs). false = none (the peer address is the client); true = any; a hop count; or addresses/CIDRs.
     */
    readonly trustProxy: boolean | number | readonly string[];
  };
  readonly log: { readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  readonly auth: {
    /** Undefined until app start-up generates or reads it from `<dataDir>/jwt-secret`. */
    readonly jwtSecret: string | undefined;
    readonly accessTokenTtlSeconds: number;
    readonly refreshTokenTtlSeconds: number;
    readonly loginMaxAttempts: number;
    readonly loginWindowSeconds: number;
  };
  readonly files: {
    /** Writes are refused with 507 when the storage volume would drop below this many free bytes. */
    readonly minFreeBytes: number;
    /** Quota given to users created without one; null = unlimited. */
    readonly defaultQuotaBytes: number | null;
    /**
     * Upload temp files not modified for this long belong to no upload any more (a process killed
     * mid-upload): the start-up and the periodic index audit remove them (issue 12).
     */
    readonly uploadTempMaxAgeMs: number;
  };
  readonly tasks: {
    readonly backend: 'immediate' | 'database' | 'redis';
    readonly redisUrl: string | undefined;
    /** Prefix of every Redis key of the redis backend (BullMQ's `prefix`): one per deployment sharing a Redis. */
    readonly redisPrefix: string;
    /** A claimed task's lease; a worker that stops heartbeating for this long loses the task (database backend). */
    readonly leaseMs: number;
    /** How often an idle database worker looks for due tasks. */
    readonly pollMs: number;
    /** Default worker concurrency (`stormvault worker --concurrency` overrides it). */
    readonly concurrency: number;
    /** Finished results (SUCCESSFUL, cancelled) are pruned this long after finishing. */
    readonly retentionMs: number;
    /** Dead-lettered results are pruned this long after finishing. */
    readonly deadRetentionMs: number;
    /** On SIGTERM a worker waits this long for running tasks before handing them back. */
    readonly shutdownGraceMs: number;
  };
  /** Index reconciliation (docs/index-sync.md). */
  readonly indexSync: {
    /** `serve` runs a background audit at start-up (never blocks or fails the start). */
    readonly auditOnStart: boolean;
    /** Cron (UTC) of the periodic audit through the task scheduler; null = off. */
    readonly auditSchedule: string | null;
  };
  /** Network-device configuration backups (docs/backups.md). */
  readonly backups: {
    /** Every location folder lives under `<root>/<organization id>/`. */
    readonly root: string;
    /** Largest configuration accepted by a push (bytes). */
    readonly maxBytes: number;
    /** How long a download waits for a storage worker's `storage.read` (ms) before 504. */
    readonly readTimeoutMs: number;
    /** A stream entry delivered but not acknowledged this long goes to another consumer (ms). */
    readonly streamClaimTimeoutMs: number;
  };
  /** Collecting configurations over SSH (issue 10, docs/collection.md). */
  readonly collect: {
    /** Collections at once in `stormvault worker --queue collect` (without --concurrency). */
    readonly concurrency: number;
    /** TCP + SSH handshake + authentication; each prompt wait / exec command; the whole device (ms). */
    readonly connectTimeoutMs: number;
    readonly commandTimeoutMs: number;
    readonly deviceTimeoutMs: number;
    /** Attempts of one collection (retries with backoff) before its failure goes on the results stream. */
    readonly attempts: number;
    /** Delay before the second attempt (ms); doubles each time, with jitter. */
    readonly retryBackoffMs: number;
    /** `backup.failed` fires on this many consecutive failures of a device. */
    readonly failedAfter: number;
  };
  /**
   * Key of the secrets kept encrypted at rest (site S3 keys, webhook secrets): 64 hex digits. Undefined
   * until app start-up generates or reads it from `<dataDir>/secret-key` (src/lib/secret-box.ts).
   */
  readonly secretKey: string | undefined;
  /** Publishing (docs/publishing.md). */
  readonly publishing: {
    /** Local content lives at `<root>/<site>/<path>`: the source of truth the bucket mirrors. */
    readonly root: string;
    /** Backstop poll of the settings version (ms); the LISTEN/NOTIFY or pub/sub nudge is usually faster. */
    readonly settingsPollMs: number;
    /** Attempts of one mirror upload before it is dead-lettered and alerted. */
    readonly uploadAttempts: number;
    /** Delay before the 2nd upload attempt; doubles each time (with jitter), up to 5 minutes. */
    readonly uploadBackoffMs: number;
    /** Files up to this size go up in one PUT; larger ones as a multipart upload. */
    readonly multipartThresholdBytes: number;
    /** Largest body of one content write. */
    readonly maxFileBytes: number;
    /** Cron (UTC) of the health check; each site only runs it inside its business hours. null = off. */
    readonly healthSchedule: string | null;
  };
  /**
   * Requests to URLs users configure (webhooks, CDN probes): public addresses only unless allowed here
   * (src/net/outbound.ts, docs/security.md "Outbound requests").
   */
  readonly outbound: {
    /** Any address, private networks and loopback included (STORMVAULT_OUTBOUND_ALLOW_PRIVATE). */
    readonly allowPrivate: boolean;
    /** Addresses and subnets allowed although private (STORMVAULT_OUTBOUND_ALLOW, comma-separated). */
    readonly allowed: readonly string[];
  };
  /** `GET /metrics` (docs/operations.md). */
  readonly metrics: {
    /** A scrape token accepted besides admin credentials (header `X-Metrics-Token`); undefined = admins only. */
    readonly token: string | undefined;
  };
  /** Records sync (docs/sync-protocol.md). */
  readonly sync: {
    readonly maxBatch: number;
    readonly maxPayloadBytes: number;
    readonly maxPullLimit: number;
    readonly tombstoneDays: number;
    readonly logDays: number;
  };
}

// Its own file so the CLI can recognise it without loading the schema (and zod) above.
export { ConfigError } from './config-error.ts';

type Source = Record<string, string | undefined>;

// Schemas are built only for the settings a given environment sets (see Setting), and shapes several
// settings share are built once and shared (schemas are immutable): each zod/mini `.check()` rebuilds the
// schema it is called on, and building all of them cost ~10-12 ms of every CLI command (issue 12, CLI
// start-up).

/** Builds on first use, then returns the same value. */
const once = <T>(build: () => T): (() => T) => {
  let value: T | undefined;
  return () => (value ??= build());
};

/** Decimal digits (surrounding blanks allowed), as a number. */
const wholeNumber = once(() => z.pipe(z.string().check(z.trim(), z.regex(/^\d+$/, 'must be a whole number')), z.transform(Number)));
const makeIntFrom = (min: number, max: number) => z.pipe(wholeNumber(), z.number().check(z.int(), z.gte(min), z.lte(max)));
const intSchemas = new Map<string, ReturnType<typeof makeIntFrom>>();

/** A whole number in [min, max], written in decimal. */
const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) => {
  const key = `${min}:${max}`;
  let schema = intSchemas.get(key);
  if (!schema) intSchemas.set(key, (schema = makeIntFrom(min, max)));
  return schema;
};

/** A non-empty string (zod/mini's `min(1)`). */
const nonEmpty = once(() => z.string().check(z.minLength(1)));
/** A secret of at least 32 characters. */
const longSecret = once(() => z.string().check(z.minLength(32, 'must be at least 32 characters')));
const trueOrFalse = once(() => z.enum(['true', 'false']));

/**
 * A setting: how to check a value that was given (built only then: most settings are absent from a
 * given environment, and building all ~60 schemas cost ~10 ms of every command), and the value when it
 * was not (`def`), or none (`opt`).
 */
interface Setting<S extends z.ZodMiniType, Fallback> {
  readonly build: () => S;
  readonly fallback: Fallback;
}
const def = <S extends z.ZodMiniType>(build: () => S, fallback: z.output<S>): Setting<S, z.output<S>> => ({ build, fallback });
const opt = <S extends z.ZodMiniType>(build: () => S): Setting<S, undefined> => ({ build, fallback: undefined });
type SettingValue<E> = E extends Setting<infer S, infer F> ? z.output<S> | F : never;

/** The default cron schedules (UTC); test/config/config.test.ts checks each is a valid cron expression. */
export const DEFAULT_SCHEDULES = {
  STORMVAULT_INDEX_AUDIT_SCHEDULE: '0 3 * * *',
  STORMVAULT_PUBLISH_HEALTH_SCHEDULE: '0 * * * *',
} as const;

/**
 * A cron schedule setting, or "off". The default is not re-checked on every load: a cron parse is the
 * first use of luxon and Intl's time-zone data in a process, ~100 ms of CPU for every CLI command
 * (issue 12, CLI start-up), and the default is known good (test/config/config.test.ts).
 */
const cronSetting = (fallback: string) =>
  def(
    () =>
      z.string().check(
        z.trim(),
        z.minLength(1),
        z.superRefine((v, ctx) => {
          const problem = v === 'off' || v === fallback ? null : scheduleProblem(v, 'UTC');
          if (problem) ctx.addIssue({ code: 'custom', message: `must be a cron expression or "off": ${problem}` });
        }),
      ),
    fallback,
  );

const KEYS = {
  STORMVAULT_DATA_DIR: def(nonEmpty, './data'),
  STORMVAULT_STORAGE_ROOT: opt(nonEmpty),
  STORMVAULT_DATABASE_URL: opt(() =>
    nonEmpty().check(
      z.refine((v) => /^(postgres|postgresql):\/\//.test(v) || /^sqlite:/.test(v) || !v.includes('://'), {
        message: 'must be postgres://…, postgresql://…, sqlite:<file> or a file path',
      }),
    ),
  ),
  STORMVAULT_HOST: def(nonEmpty, '127.0.0.1'),
  STORMVAULT_PORT: def(() => intFrom(0, 65535), 8000),
  STORMVAULT_PUBLIC_URL: opt(() => z.url()),
  STORMVAULT_BODY_LIMIT_BYTES: def(() => intFrom(1024), 5 * 1024 * 1024),
  STORMVAULT_METRICS_TOKEN: opt(longSecret),
  STORMVAULT_TRUST_PROXY: def(
    () =>
      z.pipe(
        z.string().check(z.trim()),
        z.transform((v, ctx): boolean | number | string[] => {
          if (v === 'false' || v === 'true') return v === 'true';
          if (/^\d+$/.test(v)) return Number(v);
          const entries = v.split(',').map((e) => e.trim());
          const bad = entries.filter((e) => !isTrustedProxyEntry(e));
          if (bad.length > 0) {
            ctx.issues.push({ code: 'custom', input: v, message: `must be true, false, a hop count or a comma-separated list of IP addresses/CIDRs (or loopback, linklocal, uniquelocal); not ${bad.map((b) => JSON.stringify(b)).join(', ')}` });
            return z.NEVER;
          }
          return entries;
        }),
      ),
    false,
  ),
  STORMVAULT_LOG_LEVEL: def(() => z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']), 'info'),
  STORMVAULT_JWT_SECRET: opt(longSecret),
  STORMVAULT_ACCESS_TOKEN_TTL: def(() => intFrom(30), 900),
  STORMVAULT_REFRESH_TOKEN_TTL: def(() => intFrom(60), 30 * 24 * 3600),
  STORMVAULT_LOGIN_MAX_ATTEMPTS: def(() => intFrom(1), 10),
  STORMVAULT_LOGIN_WINDOW: def(() => intFrom(1), 300),
  STORMVAULT_MIN_FREE_BYTES: def(() => intFrom(0), 64 * 1024 * 1024),
  STORMVAULT_DEFAULT_QUOTA_BYTES: opt(() => intFrom(0)),
  STORMVAULT_TASKS_BACKEND: def(() => z.enum(['immediate', 'database', 'redis']), 'database'),
  STORMVAULT_REDIS_URL: opt(() => z.string().check(z.regex(/^rediss?:\/\//, 'must be redis://… or rediss://…'))),
  STORMVAULT_REDIS_PREFIX: def(() => z.string().check(z.regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1-100 letters, digits, ".", "_", "-" or ":"')), 'stormvault'),
  STORMVAULT_TASKS_LEASE_MS: def(() => intFrom(200), 60_000),
  STORMVAULT_TASKS_POLL_MS: def(() => intFrom(5, 60_000), 500),
  STORMVAULT_TASKS_CONCURRENCY: def(() => intFrom(1, 1000), 4),
  STORMVAULT_TASKS_RETENTION: def(() => intFrom(60), 7 * 24 * 3600),
  STORMVAULT_TASKS_DEAD_RETENTION: def(() => intFrom(60), 30 * 24 * 3600),
  STORMVAULT_TASKS_SHUTDOWN_GRACE_MS: def(() => intFrom(0), 30_000),
  STORMVAULT_INDEX_AUDIT_ON_START: def(trueOrFalse, 'true'),
  STORMVAULT_INDEX_AUDIT_SCHEDULE: cronSetting(DEFAULT_SCHEDULES.STORMVAULT_INDEX_AUDIT_SCHEDULE),
  STORMVAULT_BACKUPS_ROOT: opt(nonEmpty),
  STORMVAULT_BACKUPS_MAX_BYTES: def(() => intFrom(1), 16 * 1024 * 1024),
  STORMVAULT_BACKUPS_READ_TIMEOUT: def(() => intFrom(1, 3600), 60),
  STORMVAULT_STREAMS_CLAIM_TIMEOUT_MS: def(() => intFrom(100), 60_000),
  STORMVAULT_COLLECT_CONCURRENCY: def(() => intFrom(1, 1000), 20),
  STORMVAULT_COLLECT_CONNECT_TIMEOUT_MS: def(() => intFrom(100), 10_000),
  STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS: def(() => intFrom(100), 60_000),
  STORMVAULT_COLLECT_DEVICE_TIMEOUT_MS: def(() => intFrom(100, 24 * 3600_000), 300_000),
  STORMVAULT_COLLECT_ATTEMPTS: def(() => intFrom(1, 20), 3),
  STORMVAULT_COLLECT_RETRY_BACKOFF_MS: def(() => intFrom(0), 30_000),
  STORMVAULT_BACKUP_FAILED_AFTER: def(() => intFrom(1, 1000), 3),
  STORMVAULT_UPLOAD_TEMP_MAX_AGE: def(() => intFrom(60), 24 * 3600),
  STORMVAULT_SECRET_KEY: opt(() =>
    z.string().check(
      z.trim(),
      z.refine((v) => /^[0-9a-fA-F]{64}$/.test(v) || /^[A-Za-z0-9+/_-]{43}=?$/.test(v), { message: 'must be 64 hex digits or the base64 of 32 bytes' }),
    ),
  ),
  STORMVAULT_PUBLISH_ROOT: opt(nonEmpty),
  STORMVAULT_PUBLISH_POLL_MS: def(() => intFrom(20, 60_000), 250),
  STORMVAULT_PUBLISH_UPLOAD_ATTEMPTS: def(() => intFrom(1, 100), 6),
  STORMVAULT_PUBLISH_UPLOAD_BACKOFF_MS: def(() => intFrom(0), 2000),
  STORMVAULT_PUBLISH_MULTIPART_THRESHOLD: def(() => intFrom(5 * 1024 * 1024), 16 * 1024 * 1024),
  STORMVAULT_PUBLISH_MAX_FILE_BYTES: def(() => intFrom(1), 1024 * 1024 * 1024),
  STORMVAULT_PUBLISH_HEALTH_SCHEDULE: cronSetting(DEFAULT_SCHEDULES.STORMVAULT_PUBLISH_HEALTH_SCHEDULE),
  STORMVAULT_OUTBOUND_ALLOW_PRIVATE: def(trueOrFalse, 'false'),
  STORMVAULT_OUTBOUND_ALLOW: def(
    () =>
      z.string().check(
        z.trim(),
        z.refine((v) => AddressSet.parse(v) !== null, { message: 'must be a comma-separated list of IP addresses or subnets (10.0.0.0/8, fd00::/8, 192.168.1.5)' }),
      ),
    '',
  ),
  STORMVAULT_SYNC_MAX_BATCH: def(() => intFrom(1, 100_000), 500),
  STORMVAULT_SYNC_MAX_PAYLOAD_BYTES: def(() => intFrom(1024), 4 * 1024 * 1024),
  STORMVAULT_SYNC_MAX_PULL_LIMIT: def(() => intFrom(1, 100_000), 1000),
  STORMVAULT_SYNC_TOMBSTONE_DAYS: def(() => intFrom(1), 90),
  STORMVAULT_SYNC_LOG_DAYS: def(() => intFrom(1), 30),
} as const;

export const CONFIG_KEYS = Object.keys(KEYS);

/** One entry of STORMVAULT_TRUST_PROXY as proxy-addr (Fastify's trustProxy) understands it. */
function isTrustedProxyEntry(entry: string): boolean {
  if (['loopback', 'linklocal', 'uniquelocal'].includes(entry)) return true;
  const [address, bits, ...rest] = entry.split('/');
  if (rest.length > 0 || !address || isIP(address) === 0) return false;
  if (bits === undefined) return true;
  const max = isIP(address) === 4 ? 32 : 128;
  return /^\d{1,3}$/.test(bits) && Number(bits) <= max;
}

function readConfigFile(file: string, problems: string[]): Source {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    problems.push(`STORMVAULT_CONFIG_FILE: cannot read ${file}: ${(err as Error).message}`);
    return {};
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    problems.push(`STORMVAULT_CONFIG_FILE: ${file} must hold a JSON object`);
    return {};
  }
  const out: Source = {};
  for (const [key, value] of Object.entries(parsed)) {
    if (!(key in KEYS)) {
      problems.push(`${key} (in ${file}): unknown key; known keys: ${CONFIG_KEYS.join(', ')}`);
      continue;
    }
    out[key] = value === null || value === undefined ? undefined : String(value);
  }
  return out;
}

/** Builds the frozen Config from an environment (process.env by default) and optional overrides. */
export function loadConfig(env: Source = process.env, overrides: Source = {}): Config {
  const problems: string[] = [];
  const fileValues = env.STORMVAULT_CONFIG_FILE ? readConfigFile(env.STORMVAULT_CONFIG_FILE, problems) : {};
  const merged: Source = { ...fileValues };
  for (const key of CONFIG_KEYS) {
    const v = overrides[key] ?? env[key];
    if (v !== undefined && v !== '') merged[key] = v;
  }
  const values: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(KEYS) as Array<[string, Setting<z.ZodMiniType, unknown>]>) {
    if (merged[key] === undefined) {
      values[key] = setting.fallback;
      continue;
    }
    const result = setting.build().safeParse(merged[key]);
    if (result.success) values[key] = result.data;
    else problems.push(`${key}=${JSON.stringify(merged[key])}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (values.STORMVAULT_TASKS_BACKEND === 'redis' && !values.STORMVAULT_REDIS_URL) {
    problems.push('STORMVAULT_REDIS_URL: required when STORMVAULT_TASKS_BACKEND=redis');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const v = values as {
    [K in keyof typeof KEYS]: SettingValue<(typeof KEYS)[K]>;
  };
  const dataDir = path.resolve(v.STORMVAULT_DATA_DIR);
  const dbUrl = v.STORMVAULT_DATABASE_URL ?? `sqlite:${path.join(dataDir, 'stormvault.db')}`;
  const dialect = /^postgres(ql)?:\/\//.test(dbUrl) ? 'postgres' : 'sqlite';
  const displayHost = v.STORMVAULT_HOST === '0.0.0.0' || v.STORMVAULT_HOST === '::' ? '127.0.0.1' : v.STORMVAULT_HOST;
  const config: Config = {
    dataDir,
    storageRoot: path.resolve(v.STORMVAULT_STORAGE_ROOT ?? path.join(dataDir, 'storage')),
    database: { url: dbUrl, dialect },
    server: {
      host: v.STORMVAULT_HOST,
      port: v.STORMVAULT_PORT,
      publicUrl: (v.STORMVAULT_PUBLIC_URL ?? `http://${displayHost}:${v.STORMVAULT_PORT}`).replace(/\/+$/, ''),
      bodyLimitBytes: v.STORMVAULT_BODY_LIMIT_BYTES,
      trustProxy: v.STORMVAULT_TRUST_PROXY,
    },
    log: { level: v.STORMVAULT_LOG_LEVEL },
    auth: {
      jwtSecret: v.STORMVAULT_JWT_SECRET,
      accessTokenTtlSeconds: v.STORMVAULT_ACCESS_TOKEN_TTL,
      refreshTokenTtlSeconds: v.STORMVAULT_REFRESH_TOKEN_TTL,
      loginMaxAttempts: v.STORMVAULT_LOGIN_MAX_ATTEMPTS,
      loginWindowSeconds: v.STORMVAULT_LOGIN_WINDOW,
    },
    files: {
      minFreeBytes: v.STORMVAULT_MIN_FREE_BYTES,
      defaultQuotaBytes: v.STORMVAULT_DEFAULT_QUOTA_BYTES ?? null,
      uploadTempMaxAgeMs: v.STORMVAULT_UPLOAD_TEMP_MAX_AGE * 1000,
    },
    tasks: {
      backend: v.STORMVAULT_TASKS_BACKEND,
      redisUrl: v.STORMVAULT_REDIS_URL,
      redisPrefix: v.STORMVAULT_REDIS_PREFIX,
      leaseMs: v.STORMVAULT_TASKS_LEASE_MS,
      pollMs: v.STORMVAULT_TASKS_POLL_MS,
      concurrency: v.STORMVAULT_TASKS_CONCURRENCY,
      retentionMs: v.STORMVAULT_TASKS_RETENTION * 1000,
      deadRetentionMs: v.STORMVAULT_TASKS_DEAD_RETENTION * 1000,
      shutdownGraceMs: v.STORMVAULT_TASKS_SHUTDOWN_GRACE_MS,
    },
    indexSync: {
      auditOnStart: v.STORMVAULT_INDEX_AUDIT_ON_START === 'true',
      auditSchedule: v.STORMVAULT_INDEX_AUDIT_SCHEDULE === 'off' ? null : v.STORMVAULT_INDEX_AUDIT_SCHEDULE,
    },
    backups: {
      root: path.resolve(v.STORMVAULT_BACKUPS_ROOT ?? path.join(dataDir, 'backups')),
      maxBytes: v.STORMVAULT_BACKUPS_MAX_BYTES,
      readTimeoutMs: v.STORMVAULT_BACKUPS_READ_TIMEOUT * 1000,
      streamClaimTimeoutMs: v.STORMVAULT_STREAMS_CLAIM_TIMEOUT_MS,
    },
    collect: {
      concurrency: v.STORMVAULT_COLLECT_CONCURRENCY,
      connectTimeoutMs: v.STORMVAULT_COLLECT_CONNECT_TIMEOUT_MS,
      commandTimeoutMs: v.STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS,
      deviceTimeoutMs: v.STORMVAULT_COLLECT_DEVICE_TIMEOUT_MS,
      attempts: v.STORMVAULT_COLLECT_ATTEMPTS,
      retryBackoffMs: v.STORMVAULT_COLLECT_RETRY_BACKOFF_MS,
      failedAfter: v.STORMVAULT_BACKUP_FAILED_AFTER,
    },
    secretKey: v.STORMVAULT_SECRET_KEY,
    publishing: {
      root: path.resolve(v.STORMVAULT_PUBLISH_ROOT ?? path.join(dataDir, 'publish')),
      settingsPollMs: v.STORMVAULT_PUBLISH_POLL_MS,
      uploadAttempts: v.STORMVAULT_PUBLISH_UPLOAD_ATTEMPTS,
      uploadBackoffMs: v.STORMVAULT_PUBLISH_UPLOAD_BACKOFF_MS,
      multipartThresholdBytes: v.STORMVAULT_PUBLISH_MULTIPART_THRESHOLD,
      maxFileBytes: v.STORMVAULT_PUBLISH_MAX_FILE_BYTES,
      healthSchedule: v.STORMVAULT_PUBLISH_HEALTH_SCHEDULE === 'off' ? null : v.STORMVAULT_PUBLISH_HEALTH_SCHEDULE,
    },
    outbound: {
      allowPrivate: v.STORMVAULT_OUTBOUND_ALLOW_PRIVATE === 'true',
      allowed: v.STORMVAULT_OUTBOUND_ALLOW.split(',').map((x) => x.trim()).filter(Boolean),
    },
    metrics: { token: v.STORMVAULT_METRICS_TOKEN },
    sync: {
      maxBatch: v.STORMVAULT_SYNC_MAX_BATCH,
      maxPayloadBytes: v.STORMVAULT_SYNC_MAX_PAYLOAD_BYTES,
      maxPullLimit: v.STORMVAULT_SYNC_MAX_PULL_LIMIT,
      tombstoneDays: v.STORMVAULT_SYNC_TOMBSTONE_DAYS,
      logDays: v.STORMVAULT_SYNC_LOG_DAYS,
    },
  };
  return deepFreeze(config);
}

/** The same config with the JWT secret filled in (once app start-up has generated or read it). */
export function withJwtSecret(config: Config, jwtSecret: string): Config {
  return deepFreeze({ ...config, auth: { ...config.auth, jwtSecret } });
}

/** The same config with the secrets key filled in (once app start-up has generated or read it). */
export function withSecretKey(config: Config, secretKey: string): Config {
  return deepFreeze({ ...config, secretKey });
}

function deepFreeze<T>(obj: T): T {
  if (obj && typeof obj === 'object') {
    for (const value of Object.values(obj)) deepFreeze(value);
    Object.freeze(obj);
  }
  return obj;
}
