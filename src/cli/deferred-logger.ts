import { createRequire } from 'node:module';
import type pino from 'pino';
import type { Config } from '../config/config.ts';
import type { Logger } from '../logger.ts';
import { pinoOptions } from '../logger-options.ts';

/**
 * A one-shot command's logger: pino, loaded and built only when the first line at an enabled level is
 * written (issue 12, CLI start-up: pino and its dependencies are ~95 KB of code that a command logging
 * nothing at `warn`, the CLI's level, used to compile on every run). Until then a call below the level is a
 * no-op, `child()` records its bindings, and `level` / `isLevelEnabled()` answer from the level; anything
 * else (and every line written) goes to the real pino logger, with the recorded bindings applied in order,
 * so the output is pino's own. pino comes from node_modules here (a synchronous require), not from the
 * bundle serve and worker use.
 */
const LEVEL_VALUES: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const levelValue = (name: string): number | undefined => (Object.hasOwn(LEVEL_VALUES, name) ? LEVEL_VALUES[name] : undefined);
const noop = () => {};

export function createDeferredLogger(level: Config['log']['level'], destination: pino.DestinationStream): Logger {
  const threshold = level === 'silent' ? Infinity : LEVEL_VALUES[level]!;
  let root: Logger | undefined;
  const realRoot = () => {
    if (!root) {
      const p = createRequire(import.meta.url)('pino') as typeof pino;
      root = p(pinoOptions(p, level), destination);
    }
    return root;
  };
  const wrap = (chain: ReadonlyArray<pino.Bindings>): Logger => {
    let real: Logger | undefined;
    const target = () => (real ??= chain.reduce<Logger>((l, b) => l.child(b), realRoot()));
    return new Proxy({} as Logger, {
      get(_, prop) {
        const value = typeof prop === 'string' ? levelValue(prop) : undefined;
        if (value !== undefined) {
          if (value < threshold) return noop;
          return (...args: unknown[]) => (target()[prop as pino.Level] as (...a: unknown[]) => void)(...args);
        }
        if (prop === 'silent') return noop;
        if (prop === 'level') return level;
        if (prop === 'isLevelEnabled') return (l: string) => (levelValue(l) ?? -Infinity) >= threshold;
        if (prop === 'child') return (bindings: pino.Bindings, options?: pino.ChildLoggerOptions) => (options ? target().child(bindings, options) : wrap([...chain, bindings]));
        const member = (target() as unknown as Record<PropertyKey, unknown>)[prop];
        return typeof member === 'function' ? (member as (...a: unknown[]) => unknown).bind(target()) : member;
      },
      set() {
        // A level changed at run time would no longer match the no-op checks above; nothing does it.
        throw new Error('the CLI logger cannot be changed (src/cli/deferred-logger.ts)');
      },
    });
  };
  return wrap([]);
}
