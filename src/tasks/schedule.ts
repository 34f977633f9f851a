/** Idempotency key of the run a schedule enqueues for one tick: the same tick never enqueues twice. */
export function scheduleTickKey(scheduleName: string, tick: Date): string {
  return `schedule:${scheduleName}:${tick.toISOString()}`;
}
