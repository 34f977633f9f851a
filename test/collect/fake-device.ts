import type { AddressInfo } from 'node:net';
import { Server, utils, type ServerChannel } from 'ssh2';
import { hostKeyFingerprint } from '../../src/modules/collect/ssh-collector.ts';

/**
 * An in-process SSH server that plays a network device from a transcript (DESIGN.md: real peers over
 * mocks). Shell mode echoes what is typed, answers known commands, pages long output behind a pager
 * prompt, and has an enable prompt; exec mode answers each command on its own channel.
 */
export interface Transcript {
  readonly banner?: string;
  /** The prompt before and (without enable) after login, e.g. "r1>" or "r1#". */
  readonly prompt: string;
  /** When set, `enable` asks for this password and then shows `prompt` with the given privileged form. */
  readonly enable?: { readonly password: string; readonly prompt: string };
  /** Output of each command, "\n"-separated (sent with "\r\n"). */
  readonly commands: Readonly<Record<string, string>>;
  /** Page long outputs every N lines behind `pager`. */
  readonly pageEvery?: number;
  readonly pager?: string;
}

export type Behaviour =
  | 'normal'
  | 'reject-password'
  | 'no-prompt'
  /** Half of the last command's output, then silence. */
  | 'hang'
  /** Half of the last command's output, then the TCP connection closes. */
  | 'drop';

export interface FakeDevice {
  readonly port: number;
  readonly fingerprint: string;
  readonly received: string[];
  close(): Promise<void>;
}

export function newHostKey(): { privateKey: string; fingerprint: string } {
  // ssh2 1.17's generateKeyPairSync('ed25519') strips leading zero bytes of the public key, so about 1 key
  // in 256 comes out malformed and parseKey refuses it (mscdex/ssh2#1513, #1390): draw again until both halves parse.
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519');
    const parsed = utils.parseKey(pair.public);
    if (parsed instanceof Error || utils.parseKey(pair.private) instanceof Error) continue;
    return { privateKey: pair.private, fingerprint: hostKeyFingerprint(parsed.getPublicSSH()) };
  }
}

export async function startFakeDevice(opts: {
  transcript: Transcript;
  username?: string;
  password?: string;
  behaviour?: Behaviour;
  hostKey?: { privateKey: string; fingerprint: string };
}): Promise<FakeDevice> {
  const key = opts.hostKey ?? newHostKey();
  const username = opts.username ?? 'backup';
  const password = opts.password ?? 'pw';
  const behaviour = opts.behaviour ?? 'normal';
  const t = opts.transcript;
  const received: string[] = [];
  const lastCommand = Object.keys(t.commands).at(-1);
  const conns = new Set<{ end(): void }>();

  const server = new Server({ hostKeys: [key.privateKey] }, (conn) => {
    conns.add(conn);
    conn.on('close', () => conns.delete(conn));
    conn.on('error', () => {});
    conn.on('authentication', (ctx) => {
      if (ctx.method === 'password' && behaviour !== 'reject-password' && ctx.username === username && ctx.password === password) ctx.accept();
      else ctx.reject(['password']);
    });
    conn.on('ready', () => {
      conn.on('session', (acceptSession) => {
        const session = acceptSession();
        session.on('pty', (accept) => accept?.());
        session.on('exec', (accept, _reject, info) => {
          const ch = accept();
          received.push(info.command);
          const out = t.commands[info.command];
          if (out === undefined) {
            ch.stderr.write(`sh: ${info.command}: not found\n`);
            ch.exit(127);
          } else {
            ch.write(out);
            ch.exit(0);
          }
          ch.end();
        });
        session.on('shell', (accept) => playShell(accept(), conn));
      });
    });
  });

  function playShell(ch: ServerChannel, conn: { end(): void }): void {
    const write = (s: string) => ch.write(s.replace(/\r?\n/g, '\r\n'));
    let prompt = t.prompt;
    let awaiting: 'line' | 'enable-password' | 'more' = 'line';
    let pages: string[][] = [];
    let input = '';
    let enableTries = 0;
    if (t.banner) write(t.banner + '\n');
    if (behaviour === 'no-prompt') return;
    write(prompt);

    const nextPage = () => {
      const page = pages.shift()!;
      write(page.join('\n') + '\n');
      if (pages.length > 0) {
        write(t.pager!);
        awaiting = 'more';
      } else {
        write(prompt);
        awaiting = 'line';
      }
    };

    ch.on('data', (d: Buffer) => {
      for (const c of d.toString('utf8')) {
        if (awaiting === 'more') {
          if (c === ' ') {
            const n = t.pager!.length;
            write('\b'.repeat(n) + ' '.repeat(n) + '\b'.repeat(n));
            nextPage();
          }
          continue;
        }
        if (c !== '\n' && c !== '\r') {
          input += c;
          continue;
        }
        const line = input;
        input = '';
        if (awaiting === 'enable-password') {
          write('\n');
          // As IOS does: a wrong enable password is asked for again, three times, then refused.
          if (line !== t.enable!.password && ++enableTries < 3) {
            write('Password: ');
            continue;
          }
          if (line === t.enable!.password) prompt = t.enable!.prompt;
          else write('% Bad secrets\n');
          awaiting = 'line';
          write(prompt);
          continue;
        }
        received.push(line);
        write(line + '\n'); // the terminal echo
        if (line === 'exit') {
          ch.end();
          conn.end();
          return;
        }
        if (line === 'enable' && t.enable) {
          write('Password: ');
          enableTries = 0;
          awaiting = 'enable-password';
          continue;
        }
        const out = t.commands[line];
        if (out === undefined) {
          write(line.startsWith('terminal') || line.startsWith('set cli') ? prompt : `% Invalid input: ${line}\n${prompt}`);
          continue;
        }
        const lines = out.replace(/\n$/, '').split('\n');
        if (line === lastCommand && (behaviour === 'hang' || behaviour === 'drop')) {
          write(lines.slice(0, Math.ceil(lines.length / 2)).join('\n') + '\n');
          if (behaviour === 'drop') conn.end();
          return;
        }
        const every = t.pageEvery ?? Infinity;
        pages = [];
        for (let i = 0; i < lines.length; i += every === Infinity ? lines.length || 1 : every) pages.push(lines.slice(i, i + (every === Infinity ? lines.length : every)));
        if (pages.length === 0) pages.push([]);
        nextPage();
      }
    });
  }

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    fingerprint: key.fingerprint,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of conns) c.end();
        server.close(() => resolve());
      }),
  };
}
