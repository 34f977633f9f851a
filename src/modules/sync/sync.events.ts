import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Clock, Timer } from '../../clock.ts';
import type { SignalBus } from '../../coordination/signal-bus.port.ts';

export interface ChangeNotice {
  organizationId: string;
  /** The organization's sequence number after the change. */
  seq: number;
  /** The device whose push caused it (its own changes are not news to it); null for server writes. */
  originDeviceId: string | null;
}

export interface SyncEventsOptions {
  /** The backstop's timer (DESIGN.md: no global timers). */
  clock: Pick<Clock, 'setInterval' | 'clearInterval'>;
  /** Carries notices between processes (Redis pub/sub or PostgreSQL LISTEN/NOTIFY); none = this process only. */
  signals?: SignalBus;
  /**
   * The backstop for notices the bus lost (a dropped connection, a process started in between):
   * the organization's latest change sequence number, read from the database.
   */
  latestSeq?: (organizationId: string) => Promise<number>;
  /** How often the backstop polls the organizations that have listeners in this process. Default 5000 ms. */
  pollMs?: number;
  onError?: (err: unknown) => void;
}

/** The signal bus channel (a PostgreSQL identifier: NOTIFY channels are per database). */
export const SYNC_EVENTS_CHANNEL = 'stormvault_sync_events';

/**
 * Fan-out of "something changed in organization X" to Server-Sent-Event streams. One instance per app
 * (no global emitter). With several server processes (issue 12) a write through process B must poke a
 * device listening on process A: every notice is also published on the SignalBus and re-emitted by the
 * other processes; and because a bus may lose messages, a backstop polls each watched
 * organization's latest sequence number and emits what no notice announced. Clients still pull on
 * reconnect and on a timer (docs/sync-protocol.md), so a poke is a hint, never the data.
 */
export class SyncEvents {
  private readonly emitter = new EventEmitter();
  private readonly closers = new Set<() => void>();
  /** Distinguishes this process's messages on the bus from the others'. */
  private readonly instance = randomBytes(8).toString('hex');
  /** Highest seq announced per watched organization (so the backstop emits only what was missed). */
  private readonly seen = new Map<string, number>();
  private unsubscribeSignals: (() => void) | undefined;
  private poller: Timer | undefined;
  private polling = false;

  constructor(private readonly options: SyncEventsOptions) {
    this.emitter.setMaxListeners(0);
  }

  /** Starts listening to other processes and the backstop; call once before serving. */
  async start(): Promise<void> {
    if (this.options.signals) {
      this.unsubscribeSignals = await this.options.signals.subscribe(SYNC_EVENTS_CHANNEL, (message) => this.onSignal(message));
    }
    if (this.options.latestSeq) {
      // unref: the backstop must never keep a finished process alive.
      this.poller = this.options.clock.setInterval(() => void this.poll(), this.options.pollMs ?? 5000).unref();
    }
  }

  publish(notice: ChangeNotice): void {
    this.emitLocal(notice);
    if (this.options.signals) {
      const message = JSON.stringify({ from: this.instance, ...notice });
      this.options.signals.publish(SYNC_EVENTS_CHANNEL, message).catch((err) => this.options.onError?.(err));
    }
  }

  /** Listens to one organization; returns the unsubscribe function. */
  subscribe(organizationId: string, listener: (notice: ChangeNotice) => void): () => void {
    this.emitter.on(organizationId, listener);
    return () => {
      this.emitter.off(organizationId, listener);
      if (this.emitter.listenerCount(organizationId) === 0) this.seen.delete(organizationId);
    };
  }

  /** Streams register how to end themselves, so shutdown does not wait on open connections. */
  track(close: () => void): () => void {
    this.closers.add(close);
    return () => this.closers.delete(close);
  }

  closeAll(): void {
    for (const close of [...this.closers]) close();
    this.closers.clear();
  }

  /** Stops the backstop and leaves the bus (the app closes the bus itself). */
  async stop(): Promise<void> {
    this.options.clock.clearInterval(this.poller);
    this.poller = undefined;
    this.unsubscribeSignals?.();
    this.unsubscribeSignals = undefined;
  }

  private emitLocal(notice: ChangeNotice): void {
    if (this.emitter.listenerCount(notice.organizationId) === 0) return;
    this.seen.set(notice.organizationId, Math.max(this.seen.get(notice.organizationId) ?? 0, notice.seq));
    this.emitter.emit(notice.organizationId, notice);
  }

  private onSignal(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (!isRemoteNotice(parsed) || parsed.from === this.instance) return;
    this.emitLocal({ organizationId: parsed.organizationId, seq: parsed.seq, originDeviceId: parsed.originDeviceId });
  }

  private async poll(): Promise<void> {
    if (this.polling) return;
    this.polling = true;
    try {
      for (const organizationId of this.emitter.eventNames()) {
        if (typeof organizationId !== 'string') continue;
        const seq = await this.options.latestSeq!(organizationId);
        const known = this.seen.get(organizationId);
        // The first look only records where the organization stands; later rises were missed notices.
        if (known === undefined) {
          if (this.emitter.listenerCount(organizationId) > 0) this.seen.set(organizationId, seq);
        } else if (seq > known) {
          this.emitLocal({ organizationId, seq, originDeviceId: null });
        }
      }
    } catch (err) {
      this.options.onError?.(err);
    } finally {
      this.polling = false;
    }
  }
}

function isRemoteNotice(v: unknown): v is ChangeNotice & { from: string } {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (
    typeof o.from === 'string' &&
    typeof o.organizationId === 'string' &&
    typeof o.seq === 'number' &&
    Number.isSafeInteger(o.seq) &&
    (o.originDeviceId === null || typeof o.originDeviceId === 'string')
  );
}
