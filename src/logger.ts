import pino, { type Logger } from 'pino';
import type { Config } from './config/config.ts';
import { pinoOptions } from './logger-options.ts';

/** Structured JSON logs to stdout (or the given stream); request logs carry the request id as reqId. */
export function createLogger(config: Config, destination?: pino.DestinationStream): Logger {
  return pino(pinoOptions(pino, config.log.level), destination ?? pino.destination({ fd: 1, sync: false }));
}

export type { Logger };
