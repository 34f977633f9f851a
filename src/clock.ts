/**
 * The only source of "now" and of timers for domain code, so tests can move time (DESIGN.md: no global
 * clock or timers; after pg-boss's src/clock.ts). Code that waits, renews or polls asks its Clock for the
 * timer instead of calling the global setTimeout/setInterval, and a ManualClock fires it on advance().
 */
export interface Clock {
  now(): Date;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimeout(fn: () => void, ms: number): Timer;
  /** Calls `fn` every `ms` milliseconds until cleared. */
  setInterval(fn: () => void, ms: number): Timer;
  /** Cancels a timer from setTimeout; undefined and already-fired timers are ignored. */
  clearTimeout(timer: Timer | undefined): void;
  /** Cancels a timer from setInterval; undefined and already-cleared timers are ignored. */
  clearInterval(timer: Timer | undefined): void;
}

/** A running timer. unref() lets the process exit while it is pending (a no-op on a ManualClock). */
export interface Timer {
  unref(): Timer;
}

/** Real time: the global Date and Node's timers. */
export const systemClock: Clock = {
  now: () => new Date(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clearTimeout: (timer) => clearTimeout(timer as NodeJS.Timeout | undefined),
  clearInterval: (timer) => clearInterval(timer as NodeJS.Timeout | undefined),
};

class ManualTimer implements Timer {
  constructor(
    readonly fn: () => void,
    public due: number,
    /** Period of an interval; null for a one-shot timeout. */
    readonly every: number | null,
    /** Order of creation, so timers due at the same instant fire in the order they were set. */
    readonly seq: number,
  ) {}
  unref(): Timer {
    return this;
  }
}

/**
 * A clock tests set and advance by hand. Its timers fire only inside advance()/set(), in due order, with
 * now() reading each timer's due time while it runs; an interval is due again one period later. Callbacks
 * run synchronously: a test that needs their promises settled awaits them itself.
 */
export class ManualClock implements Clock {
  private current: number;
  private readonly timers = new Set<ManualTimer>();
  private seq = 0;

  constructor(start: Date | number = Date.UTC(2026, 0, 1)) {
    this.current = typeof start === 'number' ? start : start.getTime();
  }
  now(): Date {
    return new Date(this.current);
  }
  /** Moves to `to`; going forward fires the timers due on the way, going back fires none. */
  set(to: Date | number): void {
    const target = typeof to === 'number' ? to : to.getTime();
    if (target > this.current) this.runUntil(target);
    this.current = target;
  }
  advance(ms: number): void {
    this.set(this.current + ms);
  }

  setTimeout(fn: () => void, ms: number): Timer {
    return this.add(fn, ms, null);
  }
  setInterval(fn: () => void, ms: number): Timer {
    // Node runs a 0 ms interval every 1 ms; a manual clock must not loop forever on it.
    return this.add(fn, ms, Math.max(1, ms));
  }
  clearTimeout(timer: Timer | undefined): void {
    if (timer instanceof ManualTimer) this.timers.delete(timer);
  }
  clearInterval(timer: Timer | undefined): void {
    this.clearTimeout(timer);
  }
  /** How many timers are set and not yet fired or cleared (intervals count until cleared). */
  pendingTimers(): number {
    return this.timers.size;
  }

  private add(fn: () => void, ms: number, every: number | null): Timer {
    const timer = new ManualTimer(fn, this.current + (every ?? Math.max(0, ms)), every, this.seq++);
    this.timers.add(timer);
    return timer;
  }

  private runUntil(target: number): void {
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.timers) if (t.due <= target && (!next || t.due < next.due || (t.due === next.due && t.seq < next.seq))) next = t;
      if (!next) return;
      this.current = next.due;
      if (next.every === null) this.timers.delete(next);
      else next.due += next.every;
      next.fn();
    }
  }
}
