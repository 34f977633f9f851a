import pino, { type Logger } from 'pino';
import type { Config } from './config/config.ts';

/** Structured JSON logs to stdout (or the given stream); request logs carry the request id as reqId. */
export function createLogger(config: Config, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level: config.log.level,
      base: { service: 'stormvault' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: ['req.headers.authorization', 'req.headers["x-share-password"]'], remove: true },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}

export type { Logger };
