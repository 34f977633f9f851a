/**
 * The fake network devices of bench/collect.ts: ONE ssh2 server process in which every SSH session is a
 * device. Each session shows the prompt `<user>#`, echoes what is typed and answers every command after
 * --delay ms (default 200) with --lines lines of configuration, then the prompt again. Prints
 * `{"port": N}` on stdout once listening; stops on SIGTERM or when stdin closes.
 *
 *   npx tsx bench/collect-device-server.ts [--delay 200] [--lines 200]
 */
import type { AddressInfo } from 'node:net';
import ssh2 from 'ssh2';
import { parseBenchArgs } from './bench-args.ts';

const flags = parseBenchArgs(import.meta.url, { delay: { type: 'string', default: '200' }, lines: { type: 'string', default: '200' } });
const DELAY = Number(flags.delay);
const LINES = Number(flags.lines);
// About 1 ed25519 key in 256 from ssh2 1.17 is malformed (mscdex/ssh2#1513): draw until it parses.
const hostKey = (() => {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519');
    if (!(ssh2.utils.parseKey(pair.public) instanceof Error) && !(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair.private;
  }
})();

const server = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
  let user = 'dev';
  conn.on('error', () => {});
  conn.on('authentication', (ctx) => {
    user = ctx.username;
    if (ctx.method === 'password' && ctx.password === 'pw') ctx.accept();
    else ctx.reject(['password']);
  });
  conn.on('ready', () => {
    conn.on('session', (accept) => {
      const session = accept();
      session.on('pty', (ok) => ok?.());
      session.on('shell', (ok) => {
        const ch = ok();
        const prompt = `${user}#`;
        const write = (s: string) => ch.write(s.replace(/\n/g, '\r\n'));
        write(prompt);
        let input = '';
        ch.on('data', (d: Buffer) => {
          for (const c of d.toString('utf8')) {
            if (c !== '\n' && c !== '\r') {
              input += c;
              continue;
            }
            const line = input;
            input = '';
            write(`${line}\n`);
            if (line === 'exit') {
              ch.end();
              conn.end();
              return;
            }
            setTimeout(() => {
              const out: string[] = [];
              for (let i = 0; i < LINES; i++) out.push(`${line.replace(/\s+/g, '-')} line ${i} of ${user}`);
              write(`${out.join('\n')}\n${prompt}`);
            }, DELAY);
          }
        });
      });
    });
  });
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${JSON.stringify({ port: (server.address() as AddressInfo).port })}\n`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
