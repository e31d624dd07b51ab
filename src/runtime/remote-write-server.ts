/**
 * The remote write receiver of a streamer process (REMOTE_WRITE_PORT): `POST /api/v1/write`
 * (Prometheus remote write 1.0, src/api/routes/remote-write.ts) publishing batches on the shared
 * queue, plus `GET /health` and `GET /metrics`, on a port of its own, so a Prometheus that already
 * scrapes dcgm-exporter forwards to the pipeline in nexus and traditional modes as it does to `start`.
 * With authentication (AUTH), the write route needs a bearer token with the `write` scope, as on the
 * API (the same hooks: 401 without a valid token, 403 without the scope); /health stays public and
 * /metrics follows METRICS_AUTH.
 */
import Fastify from 'fastify';
import { installAuth, type AuthSettings } from '../api/auth/plugin.js';
import { queueRemoteWriteSink, remoteWriteRoutes } from '../api/routes/remote-write.js';
import type { PipelineMetrics } from '../metrics/registry.js';
import type { Queue } from '../ports/queue.js';

/** Options of {@link startRemoteWriteServer}. */
export interface RemoteWriteServerOptions {
  host: string;
  port: number;
  queue: Queue;
  /** The queue's backpressure bound: at this depth a request is answered 503 at once. */
  maxDepth: number;
  batchSize: number;
  clusterId: string;
  metrics: PipelineMetrics;
  /** Details for /health (role, id). */
  health: () => Record<string, unknown>;
  /** Bearer authentication (absent: none). */
  auth?: AuthSettings;
}

/** A listening receiver. */
export interface RemoteWriteServer {
  /** `http://host:port` (the real port when 0 was asked). */
  readonly address: string;
  close(): Promise<void>;
}

/** Listen on `host:port` for remote write; resolves once listening. */
export async function startRemoteWriteServer(options: RemoteWriteServerOptions): Promise<RemoteWriteServer> {
  const app = Fastify({ logger: false });
  // logger: false: the receiver logs no request, so no credential can reach a log line.
  if (options.auth !== undefined) installAuth(app, options.auth);
  await app.register(remoteWriteRoutes, {
    metrics: options.metrics,
    clusterId: options.clusterId,
    sink: queueRemoteWriteSink({
      queue: options.queue,
      maxDepth: options.maxDepth,
      batchSize: options.batchSize,
      metrics: options.metrics,
      source: 'remote-write',
    }),
  });
  app.get('/health', async () => ({ status: 'ok', ...options.health() }));
  app.get('/metrics', async (_request, reply) =>
    reply.type(options.metrics.registry.contentType).send(await options.metrics.registry.metrics()),
  );
  await app.listen({ host: options.host, port: options.port });
  const bound = app.server.address();
  const port = typeof bound === 'object' && bound ? bound.port : options.port;
  return { address: `http://${options.host}:${port}`, close: () => app.close() };
}
