import { EventEmitter } from 'node:events';

export interface ChangeNotice {
  organizationId: string;
  /** The organization's sequence number after the change. */
  seq: number;
  /** The device whose push caused it (its own changes are not news to it); null for server writes. */
  originDeviceId: string | null;
}

/**
 * In-process fan-out of "something changed in organization X" to Server-Sent-Event streams. One instance
 * per app (no global emitter). With several server processes each only sees its own writes; clients
 * still converge because they pull on reconnect and on a timer (docs/sync-protocol.md).
 */
export class SyncEvents {
  private readonly emitter = new EventEmitter();
  private readonly closers = new Set<() => void>();

  constructor() {
    this.emitter.setMaxListeners(0);
  }

  publish(notice: ChangeNotice): void {
    this.emitter.emit(notice.organizationId, notice);
  }

  /** Listens to one organization; returns the unsubscribe function. */
  subscribe(organizationId: string, listener: (notice: ChangeNotice) => void): () => void {
    this.emitter.on(organizationId, listener);
    return () => this.emitter.off(organizationId, listener);
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
}
