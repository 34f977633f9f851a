import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
// ssh2 (and its optional native cpu-features) is loaded on the first collection only, so a command or a
// server that never collects does not pay for it (issue 12, CLI start-up; test/cli/lazy-imports.test.ts).
// It is CommonJS: imported whole, as Node's ESM loader (dist/ leaves ssh2 external) sees it.
import type { Client, ClientChannel } from 'ssh2';
import type { Clock, Timer } from '../../clock.ts';
import { lineMatches, PatternBudgetExceeded } from '../../lib/safe-pattern.ts';
import type { DeviceModel, ModelCommand } from './collect-model.schema.ts';
import type {
  CollectCredential,
  CollectFailureCode,
  CollectResult,
  CollectStage,
  CollectTarget,
  CollectTimeouts,
  Collector,
} from './collector.port.ts';
import { DEFAULT_COLLECT_TIMEOUTS } from './collector.port.ts';
import {
  assembleConfiguration,
  compileCommand,
  compileModel,
  renderLine,
  stripAnsi,
  type CompiledCommand,
  type CompiledModel,
} from './output-cleaning.ts';

const loadSsh2 = async () => (await import('ssh2')).default;

export interface SshCollectorOptions {
  readonly clock: Clock;
  readonly timeouts?: Partial<CollectTimeouts>;
  /** Raw output a device may send in one collection before it is refused (memory bound). */
  readonly maxOutputBytes?: number;
}

/** `SHA256:<base64 without padding>`, the form `ssh-keygen -lf` prints, of an SSH public key blob. */
export function hostKeyFingerprint(publicKeyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(publicKeyBlob).digest('base64').replace(/=+$/, '');
}

/** The ssh2 adapter of the Collector port: shell mode with prompt detection and pager handling, or exec mode. */
export class SshCollector implements Collector {
  private readonly timeouts: CollectTimeouts;
  private readonly compiled = new WeakMap<DeviceModel, CompiledModel>();
  private ssh2: ReturnType<typeof loadSsh2> | undefined;

  constructor(private readonly opts: SshCollectorOptions) {
    this.timeouts = { ...DEFAULT_COLLECT_TIMEOUTS, ...opts.timeouts };
  }

  collect(target: CollectTarget, model: DeviceModel, credential: CollectCredential, signal?: AbortSignal): Promise<CollectResult> {
    let compiled = this.compiled.get(model);
    if (!compiled) this.compiled.set(model, (compiled = compileModel(model)));
    const commands = target.commands
      ? target.commands.map((cmd) => compileCommand(plainCommand(cmd)))
      : compiled.commands;
    const maxOutputBytes = this.opts.maxOutputBytes ?? 64 * 1024 * 1024;
    this.ssh2 ??= loadSsh2();
    return this.ssh2.then((ssh2) => new Attempt(new ssh2.Client(), this.opts.clock, this.timeouts, maxOutputBytes, target, compiled, commands, credential).run(signal));
  }
}

function plainCommand(cmd: string): ModelCommand {
  return { cmd, as: 'config', cut_head: 0, cut_tail: 0, reject_lines: [], keep_lines: [], replace: [] };
}

class CollectFailure extends Error {
  constructor(
    readonly stage: CollectStage,
    readonly code: CollectFailureCode,
    message: string,
  ) {
    super(message);
  }
}

interface Expectation {
  readonly name: string;
  readonly re: RegExp;
}

/** Text kept beyond the last newline before it is set aside: a prompt is never this long. */
const MAX_TAIL = 4096;

/** One collection from one device; every wait can be cut short by fail() (device timer, close, error). */
class Attempt {
  private stage: CollectStage = 'connect';
  private hostKey: string | null = null;
  private hostKeyRejected = false;
  private failure: CollectFailure | null = null;
  private done = false;
  private rejectWait: ((err: CollectFailure) => void) | null = null;
  private readonly timers = new Set<Timer>();
  private currentCommand: string | null = null;
  // shell reader state
  private stream: ClientChannel | null = null;
  private chunks: string[] = [];
  private tail = '';
  private bytes = 0;
  private waiter: { list: readonly Expectation[]; resolve: (name: string, output: string) => void } | null = null;

  constructor(
    private readonly client: Client,
    private readonly clock: Clock,
    private readonly timeouts: CollectTimeouts,
    private readonly maxOutputBytes: number,
    private readonly target: CollectTarget,
    private readonly compiled: CompiledModel,
    private readonly commands: readonly CompiledCommand[],
    private readonly credential: CollectCredential,
  ) {}

  async run(signal?: AbortSignal): Promise<CollectResult> {
    const startedAt = this.clock.now().getTime();
    // The task's signal (its hard timeout, a cancel, a worker shutting down) ends the attempt at once.
    const onAbort = () => this.fail(new CollectFailure('timeout', 'timeout', `collection aborted${this.during()}: ${(signal?.reason as Error | undefined)?.message ?? 'aborted'}`));
    if (signal?.aborted) onAbort();
    signal?.addEventListener('abort', onAbort, { once: true });
    this.timer(() => this.fail(new CollectFailure('timeout', 'timeout', `device did not finish within ${seconds(this.timeouts.deviceMs)}${this.during()}`)), this.timeouts.deviceMs);
    this.client.on('error', (err) => this.fail(this.classify(err)));
    // Every session closes after its outcome: no failure (an Error, a stack trace) is built for that one.
    this.client.on('close', () => {
      if (!this.done) this.fail(this.closed());
    });
    this.client.on('handshake', () => {
      if (this.stage === 'connect') this.stage = 'auth';
    });
    try {
      await this.connect();
      const outputs = this.compiled.model.mode === 'shell' ? await this.shell() : await this.exec();
      const content = assembleConfiguration(outputs, this.compiled, {
        scrubSecrets: this.target.scrubSecrets,
        budget: { now: () => this.clock.now().getTime(), deadline: startedAt + this.timeouts.deviceMs },
      });
      return { ok: true, content, hostKey: this.hostKey! };
    } catch (err) {
      const f =
        err instanceof CollectFailure
          ? err
          : err instanceof PatternBudgetExceeded
            ? new CollectFailure('timeout', 'timeout', `cleaning the output took too long: ${err.message}`)
            : new CollectFailure(this.stage, 'command_failed', (err as Error).message);
      return { ok: false, stage: f.stage, code: f.code, message: f.message, hostKey: this.hostKey };
    } finally {
      this.done = true;
      signal?.removeEventListener('abort', onAbort);
      for (const t of this.timers) this.clock.clearTimeout(t);
      this.client.end();
      this.client.destroy();
    }
  }

  private timer(fn: () => void, ms: number): Timer {
    const t = this.clock.setTimeout(() => {
      this.timers.delete(t);
      fn();
    }, ms);
    this.timers.add(t);
    return t;
  }

  private clearTimer(t: Timer): void {
    this.timers.delete(t);
    this.clock.clearTimeout(t);
  }

  /** Ends the current wait (and so the attempt) with this failure; the first failure wins. */
  private fail(f: CollectFailure): void {
    if (this.done) return;
    this.failure ??= f;
    this.rejectWait?.(this.failure);
  }

  /** A promise that fail() can reject; a failure that came before it rejects at once. */
  private wait<T>(executor: (resolve: (v: T) => void, reject: (e: CollectFailure) => void) => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.failure) return reject(this.failure);
      this.rejectWait = reject;
      executor(resolve, reject);
    }).finally(() => {
      this.rejectWait = null;
    });
  }

  private during(): string {
    return this.currentCommand ? ` (waiting for \`${this.currentCommand}\`)` : ` (stage ${this.stage})`;
  }

  private classify(err: Error & { level?: string; code?: string }): CollectFailure {
    if (this.hostKeyRejected) {
      return new CollectFailure('connect', 'host_key_mismatch', `host key changed: the device presented ${this.hostKey}, expected ${this.target.knownHostKey}; an admin must accept the new key`);
    }
    if (err.level === 'client-authentication') {
      return new CollectFailure('auth', 'auth_failed', `authentication failed for user "${this.credential.username}"`);
    }
    if (this.stage === 'connect') return new CollectFailure('connect', 'connect_failed', `cannot connect to ${this.target.host}:${this.target.port}: ${err.message}`);
    if (this.stage === 'auth') return new CollectFailure('auth', 'auth_failed', `SSH handshake or authentication failed: ${err.message}`);
    return new CollectFailure(this.stage, 'connection_closed', `connection error${this.during()}: ${err.message}`);
  }

  private closed(): CollectFailure {
    if (this.hostKeyRejected) return this.classify(new Error('host key rejected'));
    if (this.stage === 'connect') return new CollectFailure('connect', 'connect_failed', `connection to ${this.target.host}:${this.target.port} closed before the SSH handshake`);
    if (this.stage === 'auth') return new CollectFailure('auth', 'auth_failed', 'connection closed during authentication');
    return new CollectFailure(this.stage, 'connection_closed', `the device closed the connection${this.during()}`);
  }

  private connect(): Promise<void> {
    return this.wait<void>((resolve, reject) => {
      const t = this.timer(() => {
        const stage = this.stage === 'auth' ? 'auth' : 'connect';
        reject(new CollectFailure(stage, 'timeout', `${stage === 'auth' ? 'SSH login' : 'connect'} did not complete within ${seconds(this.timeouts.connectMs)}`));
      }, this.timeouts.connectMs);
      this.client.once('ready', () => {
        this.clearTimer(t);
        this.stage = 'prompt';
        resolve();
      });
      const c = this.credential;
      this.client.connect({
        host: this.target.host,
        port: this.target.port,
        username: c.username,
        password: c.password,
        privateKey: c.privateKey,
        passphrase: c.passphrase,
        // Keyboard-interactive: many devices ask for the password that way.
        tryKeyboard: c.password !== undefined,
        // Our own timer (above) reports the stage; ssh2's is only a backstop.
        readyTimeout: this.timeouts.connectMs + 1000,
        hostVerifier: (key: Buffer) => {
          this.hostKey = hostKeyFingerprint(key);
          if (this.target.knownHostKey !== null && this.target.knownHostKey !== this.hostKey) {
            this.hostKeyRejected = true;
            return false;
          }
          return true;
        },
      });
      this.client.on('keyboard-interactive', (_name, _instr, _lang, prompts, finish) => finish(prompts.map(() => c.password ?? '')));
    });
  }

  // ---- shell mode -------------------------------------------------------------------------------------

  private async shell(): Promise<{ raw: string; command: CompiledCommand }[]> {
    const model = this.compiled.model;
    const stream = await this.wait<ClientChannel>((resolve, reject) =>
      this.client.shell({ term: 'vt100', cols: 511, rows: 24 }, (err, s) =>
        err ? reject(new CollectFailure('prompt', 'prompt_not_found', `the device refused a shell: ${err.message}`)) : resolve(s),
      ),
    );
    this.stream = stream;
    const decoder = new StringDecoder('utf8');
    stream.on('data', (d: Buffer) => this.onData(decoder.write(d)));
    stream.stderr.on('data', (d: Buffer) => this.onData(d.toString('utf8')));
    stream.on('close', () => {
      if (!this.done) this.fail(this.closed());
    });

    const prompt: Expectation = { name: 'prompt', re: this.compiled.prompt! };
    const login: Expectation[] = [];
    if (model.login?.username_prompt) login.push({ name: 'username', re: new RegExp(model.login.username_prompt) });
    if (model.login?.password_prompt) login.push({ name: 'password', re: new RegExp(model.login.password_prompt) });

    let r = await this.expect([prompt, ...login], 'prompt', 'no prompt after login');
    for (let round = 0; r.name !== 'prompt'; round++) {
      if (round >= 3) throw new CollectFailure('auth', 'auth_failed', 'the device keeps asking for a login: credentials refused');
      this.send(r.name === 'username' ? this.credential.username : (this.credential.password ?? ''));
      r = await this.expect([prompt, ...login], 'prompt', 'no prompt after the in-shell login');
    }
    this.stage = 'command';

    if (model.enable && this.credential.enablePassword !== undefined) {
      const pw: Expectation = { name: 'password', re: new RegExp(model.enable.password_prompt) };
      this.currentCommand = model.enable.command;
      this.send(model.enable.command);
      r = await this.expect([prompt, pw], 'command', 'no prompt after enable');
      if (r.name === 'password') {
        this.send(this.credential.enablePassword);
        r = await this.expect([prompt, pw], 'command', 'no prompt after the enable password');
        if (r.name === 'password') throw new CollectFailure('auth', 'enable_failed', 'the enable password was refused');
      }
    }
    for (const cmd of model.post_login) {
      this.currentCommand = cmd;
      this.send(cmd);
      await this.expect([prompt], 'command', `no prompt after \`${cmd}\``);
    }
    const outputs: { raw: string; command: CompiledCommand }[] = [];
    for (const command of this.commands) {
      this.currentCommand = command.command.cmd;
      this.send(command.command.cmd);
      const out = await this.expect([prompt], 'command', `no prompt after \`${command.command.cmd}\``);
      outputs.push({ raw: out.output, command });
    }
    this.currentCommand = null;
    this.done = true; // what follows is logout: a close now is expected
    for (const cmd of model.pre_logout) this.send(cmd);
    stream.end();
    return outputs;
  }

  private send(line: string): void {
    this.stream!.write(line + '\n');
  }

  private onData(text: string): void {
    if (this.done || text === '') return;
    this.bytes += text.length;
    if (this.bytes > this.maxOutputBytes) {
      this.fail(new CollectFailure('command', 'output_too_large', `the device sent more than ${this.maxOutputBytes} bytes${this.during()}`));
      return;
    }
    const nl = text.lastIndexOf('\n');
    if (nl >= 0) {
      this.chunks.push(this.tail + text.slice(0, nl + 1));
      this.tail = text.slice(nl + 1);
    } else {
      this.tail += text;
    }
    if (this.tail.length > 16 * MAX_TAIL) {
      this.chunks.push(this.tail.slice(0, -MAX_TAIL));
      this.tail = this.tail.slice(-MAX_TAIL);
    }
    this.check();
  }

  /** Looks at the last, unfinished line: a pager prompt is answered, an expected prompt ends the wait. */
  private check(): void {
    if (!this.waiter) return;
    const visible = renderLine(stripAnsi(this.tail.slice(-MAX_TAIL)));
    if (visible === '') return;
    const pager = this.compiled.pager;
    if (pager && lineMatches(pager, visible)) {
      this.tail = '';
      this.stream!.write(this.compiled.model.pager!.send);
      return;
    }
    for (const e of this.waiter.list) {
      if (lineMatches(e.re, visible)) {
        const output = this.chunks.join('') + this.tail;
        this.chunks = [];
        this.tail = '';
        this.waiter.resolve(e.name, output);
        return;
      }
    }
  }

  private expect(list: readonly Expectation[], stage: 'prompt' | 'command', what: string): Promise<{ name: string; output: string }> {
    return this.wait((resolve, reject) => {
      const t = this.timer(() => {
        this.waiter = null;
        reject(
          stage === 'prompt'
            ? new CollectFailure('prompt', 'prompt_not_found', `${what} within ${seconds(this.timeouts.commandMs)} (check the model's prompt pattern)`)
            : new CollectFailure('timeout', 'timeout', `${what} within ${seconds(this.timeouts.commandMs)}`),
        );
      }, this.timeouts.commandMs);
      this.waiter = {
        list,
        resolve: (name, output) => {
          this.clearTimer(t);
          this.waiter = null;
          resolve({ name, output });
        },
      };
      this.check();
    });
  }

  // ---- exec mode --------------------------------------------------------------------------------------

  private async exec(): Promise<{ raw: string; command: CompiledCommand }[]> {
    this.stage = 'command';
    const outputs: { raw: string; command: CompiledCommand }[] = [];
    for (const command of this.commands) {
      const cmd = command.command.cmd;
      this.currentCommand = cmd;
      const raw = await this.wait<string>((resolve, reject) => {
        const t = this.timer(() => reject(new CollectFailure('timeout', 'timeout', `\`${cmd}\` did not finish within ${seconds(this.timeouts.commandMs)}`)), this.timeouts.commandMs);
        this.client.exec(cmd, (err, stream) => {
          if (err) return reject(new CollectFailure('command', 'command_failed', `cannot run \`${cmd}\`: ${err.message}`));
          const decoder = new StringDecoder('utf8');
          const out: string[] = [];
          let stderr = '';
          let code: number | null = null;
          stream.on('data', (d: Buffer) => {
            this.bytes += d.length;
            if (this.bytes > this.maxOutputBytes) {
              reject(new CollectFailure('command', 'output_too_large', `the device sent more than ${this.maxOutputBytes} bytes${this.during()}`));
              stream.close();
            } else out.push(decoder.write(d));
          });
          stream.stderr.on('data', (d: Buffer) => {
            if (stderr.length < 1000) stderr += d.toString('utf8');
          });
          stream.on('exit', (c: number | null) => (code = c));
          stream.on('close', () => {
            this.clearTimer(t);
            if (code !== null && code !== 0) {
              reject(new CollectFailure('command', 'command_failed', `\`${cmd}\` exited with status ${code}: ${stderr.trim().slice(0, 200)}`));
            } else resolve(out.join('') + decoder.end());
          });
        });
      });
      outputs.push({ raw: `${cmd}\n${raw}`, command });
    }
    this.currentCommand = null;
    this.done = true;
    return outputs;
  }
}

function seconds(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
