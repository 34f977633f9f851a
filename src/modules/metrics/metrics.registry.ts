import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TaskFramework } from '../../tasks/framework.ts';

/** Stats fields of an index reconciliation run reported as gauges (docs/index-sync.md). */
const INDEX_FIELDS = ['missing_in_db', 'orphaned_in_db', 'stale_in_db', 'files_on_disk', 'files_in_db'] as const;

export interface MetricsDeps {
  tasks: Pick<TaskFramework, 'on' | 'list'>;
  /** Name of the index reconciliation task, whose latest successful result the index gauges show. */
  indexTaskName: string;
}

/**
 * The metrics of one app, on its own prom-client Registry (DESIGN.md: no globals; prom-client's default
 * registry is a module singleton and is never used). Counters count what this process saw; Prometheus
 * sums them over the processes it scrapes. The index gauges read the database (the latest run of any
 * process), so every process reports the same values.
 */
export class AppMetrics {
  readonly registry = new Registry();
  private readonly httpRequests: Counter<'method' | 'route' | 'status'>;
  private readonly httpDuration: Histogram<'method' | 'route'>;
  private readonly syncRequests: Counter<'kind'>;
  private readonly syncChanges: Counter<'kind'>;
  private readonly syncConflicts: Counter;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(deps: MetricsDeps) {
    const registers = [this.registry];
    this.httpRequests = new Counter({ name: 'stormvault_http_requests_total', help: 'HTTP requests answered, by route pattern and status', labelNames: ['method', 'route', 'status'], registers });
    this.httpDuration = new Histogram({
      name: 'stormvault_http_request_duration_seconds',
      help: 'HTTP request latency until the answer was sent, by route pattern',
      labelNames: ['method', 'route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    });
    const tasksTotal = new Counter({ name: 'stormvault_tasks_total', help: 'Background task transitions seen by this process, by queue and state (enqueued, started, then the final status)', labelNames: ['queue', 'state'], registers });
    this.unsubscribe.push(
      deps.tasks.on('enqueued', (r) => tasksTotal.inc({ queue: r.queue, state: 'enqueued' })),
      deps.tasks.on('started', (r) => tasksTotal.inc({ queue: r.queue, state: 'started' })),
      deps.tasks.on('finished', (r) => tasksTotal.inc({ queue: r.queue, state: r.status })),
    );
    this.syncRequests = new Counter({ name: 'stormvault_sync_requests_total', help: 'Sync pushes and pulls stored', labelNames: ['kind'], registers });
    this.syncChanges = new Counter({ name: 'stormvault_sync_changes_total', help: 'Changes carried by sync pushes and pulls', labelNames: ['kind'], registers });
    this.syncConflicts = new Counter({ name: 'stormvault_sync_conflicts_total', help: 'Conflicts raised by sync pushes', registers });

    // Both index gauges come from one read per scrape (prom-client collects the metrics concurrently).
    let inFlight: Promise<{ mode: string; stats: Record<string, unknown>; finishedAt: number } | null> | null = null;
    const latestRun = () =>
      (inFlight ??= (async () => {
        const [run] = await deps.tasks.list({ taskName: deps.indexTaskName, status: 'SUCCESSFUL', limit: 1 });
        const stats = run?.returnValue;
        if (!run || !stats || typeof stats !== 'object' || Array.isArray(stats)) return null;
        const mode = String((run.args as { mode?: unknown } | null)?.mode ?? 'audit');
        return { mode, stats: stats as Record<string, unknown>, finishedAt: (run.finishedAt?.getTime() ?? 0) / 1000 };
      })().finally(() => setImmediate(() => (inFlight = null))));
    new Gauge({
      name: 'stormvault_index_last_run',
      help: 'Figures of the latest successful index reconciliation run (any process), by mode and field',
      labelNames: ['mode', 'field'],
      registers,
      async collect() {
        this.reset();
        const run = await latestRun();
        if (run) for (const field of INDEX_FIELDS) if (typeof run.stats[field] === 'number') this.set({ mode: run.mode, field }, run.stats[field] as number);
      },
    });
    new Gauge({
      name: 'stormvault_index_last_run_timestamp_seconds',
      help: 'When the latest successful index reconciliation run finished',
      labelNames: ['mode'],
      registers,
      async collect() {
        this.reset();
        const run = await latestRun();
        if (run) this.set({ mode: run.mode }, run.finishedAt);
      },
    });
  }

  /** One answered request; `route` is the route pattern (bounded), never the raw URL. */
  observeHttp(method: string, route: string, status: number, seconds: number): void {
    this.httpRequests.inc({ method, route, status: String(status) });
    this.httpDuration.observe({ method, route }, seconds);
  }

  observeSync(activity: { kind: 'push' | 'pull'; changes: number; conflicts: number }): void {
    this.syncRequests.inc({ kind: activity.kind });
    this.syncChanges.inc({ kind: activity.kind }, activity.changes);
    if (activity.conflicts > 0) this.syncConflicts.inc(activity.conflicts);
  }

  close(): void {
    for (const off of this.unsubscribe.splice(0)) off();
  }
}
