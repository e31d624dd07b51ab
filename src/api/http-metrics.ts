/**
 * HTTP request metrics: an onResponse hook counting every answered request and observing its
 * duration, labelled by method, route pattern (not the raw URL, to bound cardinality) and status.
 */
import type { FastifyInstance } from 'fastify';
import type { PipelineMetrics } from '../metrics/registry.js';

/** Route label for requests that matched no route (404s of unknown URLs). */
export const UNMATCHED_ROUTE = 'unmatched';

/** Add the request-metrics hook to the root instance. */
export function installHttpMetrics(app: FastifyInstance, metrics: PipelineMetrics): void {
  app.addHook('onResponse', async (request, reply) => {
    const labels = {
      method: request.method,
      route: request.routeOptions.url ?? UNMATCHED_ROUTE,
      status: String(reply.statusCode),
    };
    metrics.httpRequests.inc(labels);
    metrics.httpRequestDuration.observe(labels, reply.elapsedTime / 1000);
  });
}
