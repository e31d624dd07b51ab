/**
 * The small HTTP server of a collector process (METRICS_PORT): `GET /health` for liveness probes and
 * `GET /metrics` for Prometheus, so a collector can be probed and scraped like the API. It serves
 * nothing else and is off unless METRICS_PORT is set.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import type { PipelineMetrics } from '../metrics/registry.js';

/** What /health reports: healthy or not, and details for the operator. */
export interface HealthReport {
  healthy: boolean;
  details: Record<string, unknown>;
}

/** Options of {@link startMetricsServer}. */
export interface MetricsServerOptions {
  host: string;
  port: number;
  metrics: PipelineMetrics;
  health: () => HealthReport;
}

/** A running metrics server. */
export interface MetricsServer {
  /** `http://host:port` it listens on (the real port when 0 was asked). */
  readonly address: string;
  close(): Promise<void>;
}

/** Listen on `host:port`; resolves once listening. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const app: FastifyInstance = Fastify({ logger: false });
  app.get('/health', async (_request, reply) => {
    const report = options.health();
    return reply
      .code(report.healthy ? 200 : 503)
      .send({ status: report.healthy ? 'ok' : 'unavailable', ...report.details });
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics()),
  );
  await app.listen({ host: options.host, port: options.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : options.port;
  return { address: `http://${options.host}:${port}`, close: () => app.close() };
}
