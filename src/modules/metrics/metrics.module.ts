import type { Core, ModuleParts } from '../../core.ts';
import { AppMetrics } from './metrics.registry.ts';
import { metricsRoutes } from './metrics.routes.ts';

export interface MetricsModule extends ModuleParts {
  readonly metrics: AppMetrics;
}

/** `GET /metrics` and the registry other modules report to (issue 12; docs/operations.md). */
export function createMetricsModule(core: Core, deps: { indexTaskName: string }): MetricsModule {
  const metrics = new AppMetrics({ tasks: core.tasks, indexTaskName: deps.indexTaskName });
  return {
    metrics,
    routes: [metricsRoutes({ metrics, scrapeToken: core.config.metrics.token })],
    tasks: [],
    beforeClose: () => metrics.close(),
  };
}
