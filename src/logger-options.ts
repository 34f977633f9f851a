import type pino from 'pino';
import type { Config } from './config/config.ts';

/**
 * pino's options for Stormvault's logs, given the pino module (so this file does not load it: the CLI's
 * deferred logger loads pino only when it first writes a line, src/cli/deferred-logger.ts).
 */
export function pinoOptions(p: typeof pino, level: Config['log']['level']): pino.LoggerOptions {
  return {
    level,
    base: { service: 'stormvault' },
    timestamp: p.stdTimeFunctions.isoTime,
    redact: { paths: ['req.headers.authorization', 'req.headers["x-share-password"]'], remove: true },
  };
}
