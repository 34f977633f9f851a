import { readFileSync } from 'node:fs';
import path from 'node:path';
import { isIP } from 'node:net';
import * as z from 'zod';
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

const intFrom = (min: number, max = Number.MAX_SAFE_INTEGER) =>
  z
    .string()
    .trim()
    .regex(/^\d+$/, 'must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const KEYS = {
  STORMVAULT_DATA_DIR: z.string().min(1).default('./data'),
  STORMVAULT_STORAGE_ROOT: z.string().min(1).optional(),
  STORMVAULT_DATABASE_URL: z
    .string()
    .min(1)
    .refine((v) => /^(postgres|postgresql):\/\//.test(v) || /^sqlite:/.test(v) || !v.includes('://'), {
      message: 'must be postgres://…, postgresql://…, sqlite:<file> or a file path',
    })
    .optional(),
  STORMVAULT_HOST: z.string().min(1).default('127.0.0.1'),
  STORMVAULT_PORT: intFrom(0, 65535).default(8000),
  STORMVAULT_PUBLIC_URL: z.url().optional(),
  STORMVAULT_BODY_LIMIT_BYTES: intFrom(1024).default(5 * 1024 * 1024),
  STORMVAULT_METRICS_TOKEN: z.string().min(32, 'must be at least 32 characters').optional(),
  STORMVAULT_TRUST_PROXY: z
    .string()
    .trim()
    .default('false')
    .transform((v, ctx): boolean | number | string[] => {
      if (v === 'false' || v === 'true') return v === 'true';
      if (/^\d+$/.test(v)) return Number(v);
      const entries = v.split(',').map((e) => e.trim());
      const bad = entries.filter((e) => !isTrustedProxyEntry(e));
      if (bad.length > 0) {
        ctx.addIssue({ code: 'custom', message: `must be true, false, a hop count or a comma-separated list of IP addresses/CIDRs (or loopback, linklocal, uniquelocal); not ${bad.map((b) => JSON.stringify(b)).join(', ')}` });
        return z.NEVER;
      }
      return entries;
    }),
  STORMVAULT_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  STORMVAULT_JWT_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  STORMVAULT_ACCESS_TOKEN_TTL: intFrom(30).default(900),
  STORMVAULT_REFRESH_TOKEN_TTL: intFrom(60).default(30 * 24 * 3600),
  STORMVAULT_LOGIN_MAX_ATTEMPTS: intFrom(1).default(10),
  STORMVAULT_LOGIN_WINDOW: intFrom(1).default(300),
  STORMVAULT_MIN_FREE_BYTES: intFrom(0).default(64 * 1024 * 1024),
  STORMVAULT_DEFAULT_QUOTA_BYTES: intFrom(0).optional(),
  STORMVAULT_TASKS_BACKEND: z.enum(['immediate', 'database', 'redis']).default('database'),
  STORMVAULT_REDIS_URL: z.string().regex(/^rediss?:\/\//, 'must be redis://… or rediss://…').optional(),
  STORMVAULT_REDIS_PREFIX: z.string().regex(/^[A-Za-z0-9._:-]{1,100}$/, 'must be 1-100 letters, digits, ".", "_", "-" or ":"').default('stormvault'),
  STORMVAULT_TASKS_LEASE_MS: intFrom(200).default(60_000),
  STORMVAULT_TASKS_POLL_MS: intFrom(5, 60_000).default(500),
  STORMVAULT_TASKS_CONCURRENCY: intFrom(1, 1000).default(4),
  STORMVAULT_TASKS_RETENTION: intFrom(60).default(7 * 24 * 3600),
  STORMVAULT_TASKS_DEAD_RETENTION: intFrom(60).default(30 * 24 * 3600),
  STORMVAULT_TASKS_SHUTDOWN_GRACE_MS: intFrom(0).default(30_000),
  STORMVAULT_INDEX_AUDIT_ON_START: z.enum(['true', 'false']).default('true'),
  STORMVAULT_INDEX_AUDIT_SCHEDULE: z
    .string()
    .trim()
    .min(1)
    .default('0 3 * * *')
    .superRefine((v, ctx) => {
      const problem = v === 'off' ? null : scheduleProblem(v, 'UTC');
      if (problem) ctx.addIssue({ code: 'custom', message: `must be a cron expression or "off": ${problem}` });
    }),
  STORMVAULT_BACKUPS_ROOT: z.string().min(1).optional(),
  STORMVAULT_BACKUPS_MAX_BYTES: intFrom(1).default(16 * 1024 * 1024),
  STORMVAULT_BACKUPS_READ_TIMEOUT: intFrom(1, 3600).default(60),
  STORMVAULT_STREAMS_CLAIM_TIMEOUT_MS: intFrom(100).default(60_000),
  STORMVAULT_COLLECT_CONCURRENCY: intFrom(1, 1000).default(20),
  STORMVAULT_COLLECT_CONNECT_TIMEOUT_MS: intFrom(100).default(10_000),
  STORMVAULT_COLLECT_COMMAND_TIMEOUT_MS: intFrom(100).default(60_000),
  STORMVAULT_COLLECT_DEVICE_TIMEOUT_MS: intFrom(100, 24 * 3600_000).default(300_000),
  STORMVAULT_COLLECT_ATTEMPTS: intFrom(1, 20).default(3),
  STORMVAULT_COLLECT_RETRY_BACKOFF_MS: intFrom(0).default(30_000),
  STORMVAULT_BACKUP_FAILED_AFTER: intFrom(1, 1000).default(3),
  STORMVAULT_UPLOAD_TEMP_MAX_AGE: intFrom(60).default(24 * 3600),
  STORMVAULT_SECRET_KEY: z
    .string()
    .trim()
    .refine((v) => /^[0-9a-fA-F]{64}$/.test(v) || /^[A-Za-z0-9+/_-]{43}=?$/.test(v), { message: 'must be 64 hex digits or the base64 of 32 bytes' })
    .optional(),
  STORMVAULT_PUBLISH_ROOT: z.string().min(1).optional(),
  STORMVAULT_PUBLISH_POLL_MS: intFrom(20, 60_000).default(250),
  STORMVAULT_PUBLISH_UPLOAD_ATTEMPTS: intFrom(1, 100).default(6),
  STORMVAULT_PUBLISH_UPLOAD_BACKOFF_MS: intFrom(0).default(2000),
  STORMVAULT_PUBLISH_MULTIPART_THRESHOLD: intFrom(5 * 1024 * 1024).default(16 * 1024 * 1024),
  STORMVAULT_PUBLISH_MAX_FILE_BYTES: intFrom(1).default(1024 * 1024 * 1024),
  STORMVAULT_PUBLISH_HEALTH_SCHEDULE: z
    .string()
    .trim()
    .min(1)
    .default('0 * * * *')
    .superRefine((v, ctx) => {
      const problem = v === 'off' ? null : scheduleProblem(v, 'UTC');
      if (problem) ctx.addIssue({ code: 'custom', message: `must be a cron expression or "off": ${problem}` });
    }),
  STORMVAULT_OUTBOUND_ALLOW_PRIVATE: z.enum(['true', 'false']).default('false'),
  STORMVAULT_OUTBOUND_ALLOW: z
    .string()
    .trim()
    .default('')
    .refine((v) => AddressSet.parse(v) !== null, { message: 'must be a comma-separated list of IP addresses or subnets (10.0.0.0/8, fd00::/8, 192.168.1.5)' }),
  STORMVAULT_SYNC_MAX_BATCH: intFrom(1, 100_000).default(500),
  STORMVAULT_SYNC_MAX_PAYLOAD_BYTES: intFrom(1024).default(4 * 1024 * 1024),
  STORMVAULT_SYNC_MAX_PULL_LIMIT: intFrom(1, 100_000).default(1000),
  STORMVAULT_SYNC_TOMBSTONE_DAYS: intFrom(1).default(90),
  STORMVAULT_SYNC_LOG_DAYS: intFrom(1).default(30),
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
  for (const [key, schema] of Object.entries(KEYS)) {
    const result = (schema as z.ZodType).safeParse(merged[key]);
    if (result.success) values[key] = result.data;
    else problems.push(`${key}=${JSON.stringify(merged[key])}: ${result.error.issues.map((i) => i.message).join('; ')}`);
  }
  if (values.STORMVAULT_TASKS_BACKEND === 'redis' && !values.STORMVAULT_REDIS_URL) {
    problems.push('STORMVAULT_REDIS_URL: required when STORMVAULT_TASKS_BACKEND=redis');
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const v = values as {
    [K in keyof typeof KEYS]: z.output<(typeof KEYS)[K]>;
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
