import type { BackoffPolicy } from './types.ts';

/**
 * Pure retry arithmetic shared by every backend that owns its retries.
 * Delay before attempt `failedAttempt + 1`: d = min(capMs, baseMs * 2^(failedAttempt-1)); with jitter the
 * delay is uniform in [d/2, d] ("equal jitter": never zero, so a retry storm still spreads out).
 * `random` is injectable so tests can pin the jitter.
 */
export function retryDelayMs(failedAttempt: number, policy: BackoffPolicy, random: () => number = Math.random): number {
  const exponent = Math.max(0, failedAttempt - 1);
  // 2^exponent overflows to Infinity for large attempts; min() keeps the cap.
  const full = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(exponent, 52));
  if (!policy.jitter) return Math.round(full);
  const half = full / 2;
  return Math.round(half + random() * half);
}

/** The bounds retryDelayMs can return for an attempt: what tests and docs can promise. */
export function retryDelayBounds(failedAttempt: number, policy: BackoffPolicy): { min: number; max: number } {
  const full = Math.min(policy.capMs, policy.baseMs * 2 ** Math.min(Math.max(0, failedAttempt - 1), 52));
  return policy.jitter ? { min: Math.round(full / 2), max: Math.round(full) } : { min: Math.round(full), max: Math.round(full) };
}

/** After a failed attempt: retry (and when) or give up. */
export function decideAfterFailure(input: {
  attempts: number;
  maxAttempts: number;
  retryable: boolean;
  policy: BackoffPolicy;
  now: Date;
  random?: () => number;
}): { retry: true; runAfter: Date } | { retry: false } {
  if (!input.retryable || input.attempts >= input.maxAttempts) return { retry: false };
  return { retry: true, runAfter: new Date(input.now.getTime() + retryDelayMs(input.attempts, input.policy, input.random)) };
}
