/**
 * API app factory: builds a fastify instance with docs, error mapping, request metrics, CORS,
 * a check of every string parameter (no control characters, valid UTF-8) and every REST route,
 * plus, when asked for, GraphQL (/graphql, with subscriptions over graphql-ws) and the /ws event
 * stream as separate plugins sharing one event hub and one WebSocket upgrade router. REST and
 * GraphQL read the sample store through one read limiter (read-limiter.ts). It does not listen
 * (the caller listens, or tests use `inject()`). Without `graphql` and `websocket` options the app
 * is the REST-only API.
 */
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Config } from '../config/config.js';
import { EventHub } from '../events/hub.js';
import { HierarchyReader } from '../hierarchy/reader.js';
import type { ApiContext, ApiDeps } from './context.js';
import { originAllowed, registerCors, type CorsSettings } from './cors.js';
import { graphqlPlugin, type GraphqlSettings } from './graphql/plugin.js';
import { streamPlugin, type WebSocketSettings } from './ws/plugin.js';
import { installUpgradeRouter, type UpgradeTarget } from './ws/upgrade.js';
import { registerDocs } from './docs.js';
import { installErrorHandling, sendError } from './errors.js';
import { installHttpMetrics } from './http-metrics.js';
import { clusterRoutes } from './routes/clusters.js';
import { deadLetterRoutes } from './routes/dead-letters.js';
import { gpuRoutes } from './routes/gpus.js';
import { healthRoutes } from './routes/health.js';
import { hostGpuRoutes } from './routes/host-gpus.js';
import { gpuHealthRoutes } from './routes/gpu-health.js';
import { checkQueryEncoding, checkStringParameters } from './params.js';
import { DEFAULT_READ_LIMITS, ReadLimiter, type ReadLimits } from './read-limiter.js';
import { exportReadLimiterMetrics } from './read-limiter-metrics.js';
import { metricsRoutes } from './routes/metrics.js';
import { serviceRoutes } from './routes/services.js';
import { targetRoutes } from './routes/targets.js';
import { federateRoutes } from './routes/federate.js';
import { analyticsRoutes } from './routes/analytics.js';
import { parsePrices, type PriceTable } from '../analytics/prices.js';
import { alertRoutes } from './routes/alerts.js';
import { dashboardPlugin } from './web/dashboard.js';
import { isPrometheusApiRoute, prometheusRoutes, type PromqlSettings } from './routes/prometheus.js';
import { remoteWriteRoutes, type RemoteWriteSink } from './routes/remote-write.js';
import type { ScrapeTargetBoard } from '../ingest/scrape.js';
import { declarePublic, installAuth, type AuthSettings } from './auth/plugin.js';
import { installRateLimit, type RateLimitSettings } from './rate-limit.js';
import { tokenRoutes } from './auth/routes.js';
import { CREDENTIAL_LOG_PATHS } from './auth/redact.js';
import type { WsAuth } from './auth/ws.js';
import { readTlsPair, watchTlsPair, type TlsSettings } from './auth/tls.js';

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
  /** CORS headers on every route; absent: none. */
  cors?: CorsSettings;
  /** Origins allowed to open WebSockets (besides same-origin and non-browser clients); default none. */
  allowedOrigins?: readonly string[];
  /** Serve GraphQL at /graphql; absent: off. */
  graphql?: GraphqlSettings;
  /** Serve the JSON event stream at /ws; absent: off. */
  websocket?: WebSocketSettings;
  /** Event stream shared by subscriptions and /ws. */
  events?: { historyLimit?: number; maxReplayWatches?: number };
  /** Limits on sample-store reads (READ_*); missing fields take {@link DEFAULT_READ_LIMITS}. */
  reads?: Partial<ReadLimits>;
  /** Scrape targets to report at GET /api/v1/targets (and as `up` on /metrics); absent: no such route. */
  scrapeTargets?: ScrapeTargetBoard;
  /** Serve Prometheus remote write at POST /api/v1/write into this sink; absent: no such route. */
  remoteWrite?: { sink: RemoteWriteSink; clusterId: string; maxBytes?: number };
  /** Limits of the Prometheus query API and /federate (PROMQL_*); missing fields take their defaults. */
  promql?: Partial<PromqlSettings>;
  /** Requests per window per principal or address (src/api/rate-limit.ts); absent or max 0: none. */
  rateLimit?: RateLimitSettings;
  /** Bearer authentication and scopes on every interface (src/api/auth/); absent: none. */
  auth?: AuthSettings & Omit<WsAuth, 'authenticator'>;
  /** Serve HTTPS with this certificate and key, reloaded when the files change; absent: HTTP. */
  tls?: TlsSettings;
  /** Analytics prices per GPU-hour (ANALYTICS_PRICES); absent: `default=1`. */
  analytics?: { prices?: PriceTable };
}

/** The realtime side of an app, for metrics and tests: the event hub and the WebSocket endpoints. */
export interface Realtime {
  readonly hub: EventHub;
  /** WebSocket servers by path (/graphql, /ws). */
  readonly endpoints: ReadonlyMap<string, UpgradeTarget>;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** Present when GraphQL or /ws is enabled. */
    realtime?: Realtime;
  }
}

/** Which process builds the app: the embedded one (introspection on by default) or the API role. */
export type ApiMode = 'embedded' | 'api';

/** The protocol options of {@link buildApp} from the configuration (ENABLE_*, CORS_*, GRAPHQL_*, WS_*, READ_*). */
export function apiOptionsFromConfig(config: Config, mode: ApiMode): ApiOptions {
  const options: ApiOptions = {
    allowedOrigins: config.CORS_ORIGINS,
    events: { historyLimit: config.EVENT_HISTORY },
    reads: {
      concurrency: config.READ_CONCURRENCY,
      maxQueued: config.READ_QUEUE,
      timeoutMs: config.READ_TIMEOUT,
      maxRows: config.READ_MAX_ROWS,
    },
    promql: { timeoutMs: config.PROMQL_TIMEOUT, maxSamples: config.PROMQL_MAX_SAMPLES },
    rateLimit: { max: config.RATE_LIMIT, windowMs: config.RATE_LIMIT_WINDOW },
    analytics: { prices: parsePrices(config.ANALYTICS_PRICES) },
  };
  if (config.ENABLE_CORS)
    options.cors = { origins: config.CORS_ORIGINS, credentials: config.CORS_CREDENTIALS };
  if (config.ENABLE_GRAPHQL) {
    options.graphql = {
      introspection: config.GRAPHQL_INTROSPECTION ?? mode === 'embedded',
      limits: {
        maxDepth: config.GRAPHQL_MAX_DEPTH,
        maxAliases: config.GRAPHQL_MAX_ALIASES,
        maxCost: config.GRAPHQL_MAX_COST,
        maxTokens: config.GRAPHQL_MAX_TOKENS,
      },
      maxBatch: config.GRAPHQL_MAX_BATCH,
      defaultClusterId: config.CLUSTER_ID,
      subscriptions: {
        initTimeoutMs: config.WS_INIT_TIMEOUT,
        keepAliveMs: config.WS_HEARTBEAT,
        maxPayload: config.WS_MAX_PAYLOAD,
        maxConnections: config.WS_MAX_CONNECTIONS,
        maxOperations: config.WS_MAX_SUBSCRIPTIONS,
        maxBuffered: config.WS_MAX_BUFFERED,
      },
      // About one event per KiB of the send-buffer bound, beyond twice the largest delivery (a
      // snapshot, a round) the subscription was handed (events/iterator.ts).
      maxQueuedEvents: Math.max(16, Math.floor(config.WS_MAX_BUFFERED / 1024)),
    };
  }
  if (config.TLS_CERT_FILE !== undefined && config.TLS_KEY_FILE !== undefined)
    options.tls = { certFile: config.TLS_CERT_FILE, keyFile: config.TLS_KEY_FILE };
  if (config.ENABLE_WEBSOCKET) {
    options.websocket = {
      heartbeatMs: config.WS_HEARTBEAT,
      maxPayload: config.WS_MAX_PAYLOAD,
      maxBuffered: config.WS_MAX_BUFFERED,
      maxConnections: config.WS_MAX_CONNECTIONS,
      maxSubscriptions: config.WS_MAX_SUBSCRIPTIONS,
    };
  }
  return options;
}

/**
 * Build the REST API. Resolves once every plugin and route is registered; does not listen.
 * The app only reads from `deps`; closing the app does not close the ports.
 */
export async function buildApp(deps: ApiDeps, options: ApiOptions = {}): Promise<FastifyInstance> {
  const now = deps.now ?? Date.now;
  // Should a request ever be logged with its headers, no credential goes with it (docs/security.md).
  const logger: FastifyBaseLogger = deps.logger.child(
    { component: 'api' },
    { redact: { paths: CREDENTIAL_LOG_PATHS, censor: '[redacted]' } },
  );
  const tls = options.tls ? readTlsPair(options.tls) : undefined;
  // With TLS the server is an https.Server; routes and hooks do not depend on which.
  const app = Fastify({
    https: tls ?? null,
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
  }) as unknown as FastifyInstance;
  if (options.tls) {
    const stop = watchTlsPair(
      app.server as unknown as HttpsServer,
      options.tls,
      deps.logger.child({ component: 'tls' }),
    );
    app.addHook('onClose', async () => stop());
  }

  installErrorHandling(app);
  installHttpMetrics(app, deps.metrics);
  // Every string parameter of every REST route, before the schemas: no NUL or other control
  // characters, no invalid UTF-8 (PostgreSQL would refuse them with store-internal messages).
  // GraphQL checks its arguments itself (its GET query text is a document, newlines and all).
  app.addHook('preValidation', async (request) => {
    if (request.routeOptions.url?.startsWith('/graphql')) return;
    checkQueryEncoding(request.url);
    checkStringParameters(request.params, 'path parameter');
    // PromQL text may span lines: the Prometheus API routes check their parameters themselves.
    if (!isPrometheusApiRoute(request.routeOptions.url))
      checkStringParameters(request.query, 'query parameter');
  });
  // Before any route, so every route (and the preflight of any path) gets CORS handling.
  if (options.cors) await registerCors(app, options.cors);
  // After CORS (a 401 still carries CORS headers), before the docs and every route.
  if (options.auth) installAuth(app, options.auth);
  else declarePublic(app);
  // After auth (the key is the principal when there is one), before every route.
  if (options.rateLimit) await installRateLimit(app, options.rateLimit);
  await registerDocs(app, {
    version: options.version ?? '0.1.0',
    ui: options.docs ?? true,
    security: options.auth !== undefined,
  });

  const reader = new HierarchyReader(deps.coordination, deps.staleAfterMs, now, (key, reason) =>
    logger.warn({ key, reason }, 'skipping invalid hierarchy record'),
  );
  const reads = new ReadLimiter({ ...DEFAULT_READ_LIMITS, ...options.reads });
  exportReadLimiterMetrics(deps.metrics.registry, reads);
  const ctx: ApiContext = { deps, reader, readinessTimeoutMs: options.readinessTimeoutMs ?? 2000, reads };

  await app.register(healthRoutes, ctx);
  await app.register(metricsRoutes, ctx);
  await app.register(clusterRoutes, ctx);
  await app.register(hostGpuRoutes, ctx);
  await app.register(gpuHealthRoutes, ctx);
  await app.register(gpuRoutes, ctx);
  await app.register(deadLetterRoutes, ctx);
  await app.register(serviceRoutes, ctx);
  if (options.scrapeTargets) await app.register(targetRoutes, { ctx, board: options.scrapeTargets });
  await app.register(prometheusRoutes, { ctx, settings: options.promql });
  await app.register(federateRoutes, { ctx, timeoutMs: options.promql?.timeoutMs });
  await app.register(analyticsRoutes, { ctx, prices: options.analytics?.prices });
  await app.register(alertRoutes, { ctx });
  if (options.remoteWrite)
    await app.register(remoteWriteRoutes, { metrics: ctx.deps.metrics, ...options.remoteWrite });
  if (options.auth?.tokens)
    await app.register(tokenRoutes, {
      tokens: options.auth.tokens,
      authenticator: options.auth.authenticator,
    });
  await registerRealtime(app, ctx, options);
  // Last: its GET /* fallback answers only paths no route above serves.
  await app.register(dashboardPlugin);
  return app;
}

/** GraphQL and /ws: one event hub, one upgrade router, closed before the HTTP server. */
async function registerRealtime(app: FastifyInstance, ctx: ApiContext, options: ApiOptions): Promise<void> {
  if (!options.graphql && !options.websocket) return;
  const log = ctx.deps.logger.child({ component: 'api' });
  const hub = new EventHub({
    coordination: ctx.deps.coordination,
    historyLimit: options.events?.historyLimit,
    maxReplayWatches: options.events?.maxReplayWatches,
    logger: log.child({ component: 'events' }),
    now: ctx.deps.now,
  });
  const upgrades = new Map<string, UpgradeTarget>();
  if (options.graphql) {
    await app.register(graphqlPlugin, {
      settings: options.graphql,
      services: {
        reader: ctx.reader,
        coordination: ctx.deps.coordination,
        store: ctx.deps.store,
        hub,
        reads: ctx.reads,
        prices: options.analytics?.prices ?? parsePrices('default=1'),
      },
      upgrades,
      logger: log.child({ component: 'graphql' }),
    });
  }
  if (options.websocket) {
    await app.register(streamPlugin, {
      ...options.websocket,
      hub,
      upgrades,
      coordination: ctx.deps.coordination,
      logger: log,
    });
  }
  const realtime: Realtime = { hub, endpoints: upgrades };
  app.decorate('realtime', realtime);
  const allowed = options.allowedOrigins ?? [];
  const uninstall = installUpgradeRouter(app.server, {
    routes: upgrades,
    allowOrigin: (origin, host) => originAllowed(origin, allowed, host),
    logger: log.child({ component: 'ws' }),
    auth: options.auth,
  });
  // Start watching once the app is ready, so resuming clients find history from the start.
  app.addHook('onReady', async () => {
    await hub.start();
  });
  app.addHook('preClose', async () => {
    uninstall();
    await hub.close();
  });
}
