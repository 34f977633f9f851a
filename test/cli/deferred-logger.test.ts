import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createDeferredLogger } from '../../src/cli/deferred-logger.ts';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/logger.ts';

// Issue 12 (CLI start-up): a one-shot command's logger loads pino only when it writes a line, and then
// writes exactly what the server's pino logger writes.

function sink() {
  const lines: Array<Record<string, unknown>> = [];
  let writes = 0;
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      writes++;
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { stream, lines, writes: () => writes };
}
const withoutTime = (lines: Array<Record<string, unknown>>) => lines.map(({ time, ...rest }) => (expect(typeof time).toBe('string'), rest));

describe('the CLI deferred logger', () => {
  it('writes what pino writes: levels, child bindings in order, objects, errors and redaction', async () => {
    const config = loadConfig({ STORMVAULT_LOG_LEVEL: 'info' });
    const a = sink();
    const b = sink();
    const loggers = [createLogger(config, a.stream), createDeferredLogger('info', b.stream)];
    for (const logger of loggers) {
      logger.debug('not written');
      const child = logger.child({ component: 'tasks' }).child({ task: 't1', attempt: 2 });
      child.info({ n: 1 }, 'ran %s', 'once');
      child.warn('plain');
      logger.error({ err: new Error('boom'), req: { headers: { authorization: 'Bearer secret' } } }, 'failed');
      expect(logger.isLevelEnabled('debug')).toBe(false);
      expect(logger.isLevelEnabled('warn')).toBe(true);
      expect(logger.level).toBe('info');
    }
    await new Promise((r) => setImmediate(r));
    const plain = withoutTime(a.lines).map((l) => JSON.stringify({ ...l, pid: 0, hostname: '' }).replace(/"stack":"[^"]*"/, ''));
    const deferred = withoutTime(b.lines).map((l) => JSON.stringify({ ...l, pid: 0, hostname: '' }).replace(/"stack":"[^"]*"/, ''));
    expect(deferred).toEqual(plain);
    expect(b.lines).toHaveLength(3);
    expect(JSON.stringify(b.lines)).not.toContain('Bearer secret');
    expect(b.lines[0]).toMatchObject({ level: 30, component: 'tasks', task: 't1', attempt: 2, n: 1, msg: 'ran once', service: 'stormvault' });
  });

  it('writes nothing and builds no pino logger while nothing reaches its level', () => {
    const out = sink();
    const logger = createDeferredLogger('warn', out.stream);
    const child = logger.child({ component: 'x' });
    child.info('no');
    child.debug({ a: 1 }, 'no');
    logger.trace('no');
    expect(out.writes()).toBe(0);
    expect(() => {
      (logger as unknown as { level: string }).level = 'debug';
    }).toThrow(/cannot be changed/);
    // Names on Object.prototype are not levels; an unknown level is not enabled (as in pino).
    expect(logger.isLevelEnabled('toString' as never)).toBe(false);
    expect(typeof (logger as unknown as Record<string, unknown>).constructor).toBe('function');
    expect(out.writes()).toBe(0);
    const silent = createDeferredLogger('silent', out.stream);
    silent.fatal('no');
    expect(silent.isLevelEnabled('fatal')).toBe(false);
    expect(out.writes()).toBe(0);
  });
});
