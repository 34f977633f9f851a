// Automatic failover with hysteresis (issue 11 "URL resolver"): N failed health checks in a row put a
// site into local fallback by itself; only M healthy ones in a row bring it back. An admin's pin wins.
// Pure: the state goes in, the next state comes out.

export type FailoverPin = 'auto' | 'cdn' | 'local';
export type FailoverState = 'cdn' | 'local';

export interface FailoverStatus {
  state: FailoverState;
  failures: number;
  successes: number;
}

export interface FailoverThresholds {
  /** N: consecutive failed checks that switch to local. */
  failureThreshold: number;
  /** M: consecutive healthy checks that switch back to the CDN. */
  recoveryThreshold: number;
}

/** The state after one health check; `switched` tells a change (alert raised or resolved). */
export function nextFailover(current: FailoverStatus, healthy: boolean, t: FailoverThresholds): FailoverStatus & { switched: boolean } {
  if (healthy) {
    const successes = current.successes + 1;
    if (current.state === 'local' && successes >= t.recoveryThreshold) return { state: 'cdn', failures: 0, successes, switched: true };
    return { state: current.state, failures: 0, successes, switched: false };
  }
  const failures = current.failures + 1;
  if (current.state === 'cdn' && failures >= t.failureThreshold) return { state: 'local', failures, successes: 0, switched: true };
  return { state: current.state, failures, successes: 0, switched: false };
}

/** Which URLs a site hands out, before looking at any one file's mirror state. */
export function siteServesCdn(site: { cdnEnabled: boolean; localFallbackMode: boolean; cdnBaseUrl: string | null; s3Configured: boolean; pin: FailoverPin; state: FailoverState }): boolean {
  if (!site.cdnEnabled || site.localFallbackMode || !site.cdnBaseUrl || !site.s3Configured) return false;
  if (site.pin === 'local') return false;
  if (site.pin === 'cdn') return true;
  return site.state === 'cdn';
}
