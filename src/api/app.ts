/**
 * REST API app factory: builds a fastify instance with docs, error mapping, request metrics and
 * every REST route, without listening (the caller listens, or tests use `inject()`). GraphQL and
 * WebSocket are separate plugins the caller may register on the returned instance.
 */
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { HierarchyReader } from '../hierarchy/reader.js';
import type { ApiContext, ApiDeps } from './context.js';
import { registerDocs } from './docs.js';
import { installErrorHandling, sendError } from './errors.js';
import { installHttpMetrics } from './http-metrics.js';
import { clusterRoutes } from './routes/clusters.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { gpuRoutes } from './routes/gpus.js';
import { healthRoutes } from './routes/health.js';
import { hostGpuRoutes } from './routes/host-gpus.js';
import { metricsRoutes } from './routes/metrics.js';
import { serviceRoutes } from './routes/services.js';

export type { ApiDeps } from './context.js';

/** Options of {@link buildApp}. */
export interface ApiOptions {
  /** Serve Swagger UI at /docs (default true). /openapi.json is always served. */
  docs?: boolean;
  /** Longest one readiness check may take before /ready counts it failed (default 2000 ms). */
  readinessTimeoutMs?: number;
  /** Version reported in the OpenAPI document (default 0.1.0). */
  version?: string;
  /** Trust X-Forwarded-* headers (behind a proxy); default false. */
  trustProxy?: boolean;
}

/**
 * Build the REST API. Resolves once every plugin and route is registered; does not listen.
 * The app only reads from `deps`; closing the app does not close the ports.
 */
export async function buildApp(deps: ApiDeps, options: ApiOptions = {}): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  const logger: FastifyBaseLogger = deps.logger.child({ component: 'api' });
  const app = Fastify({
    loggerInstance: logger,
    trustProxy: options.trustProxy ?? false,
    requestIdHeader: 'x-request-id',
    // Per-request log lines would drown the pipeline's own logs; /metrics counts every request.
    logController: new LogController({ disableRequestLogging: true }),
    // Path parameters (host names, UUIDs) are checked by the route schemas, in the API's error shape.
    routerOptions: { maxParamLength: 1024 },
    // Bad URL encoding and similar router-level failures use the API's error shape too.
    frameworkErrors: (error, request, reply) => sendError(error, request, reply),
    // Keep unknown query parameters so the schema can refuse them by name instead of dropping them.
    ajv: { customOptions: { removeAdditional: false } },
  });

  installErrorHandling(app);
  installHttpMetrics(app, deps.metrics);
  await registerDocs(app, { version: options.version ?? '0.1.0', ui: options.docs ?? true });

  const reader = new HierarchyReader(deps.coordination, deps.staleAfterMs, now, (key, reason) =>
    logger.warn({ key, reason }, 'skipping invalid hierarchy record'),
  );
  const ctx: ApiContext = { deps, reader, readinessTimeoutMs: options.readinessTimeoutMs ?? 2000 };

  await app.register(healthRoutes, ctx);
  await app.register(metricsRoutes, ctx);
  await app.register(clusterRoutes, ctx);
  await app.register(hostGpuRoutes, ctx);
  await app.register(gpuRoutes, ctx);
  await app.register(deadLetterRoutes, ctx);
  await app.register(serviceRoutes, ctx);
  return app;
}
