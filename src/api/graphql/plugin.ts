/**
 * Fastify plugin of GraphQL: the HTTP routes at /graphql (queries, GraphiQL) and, when
 * subscriptions are on, the graphql-ws server registered with the upgrade router under /graphql.
 * Both cost documents with the fleet's size from one cached snapshot of the hierarchy.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { Logger } from '../../util/logger.js';
import type { UpgradeTarget } from '../ws/upgrade.js';
import { CardinalityCache } from './cardinality.js';
import type { GraphqlServices } from './context.js';
import type { PipelineSettings } from './execute.js';
import { graphqlHttpRoutes } from './http.js';
import { GRAPHIQL_DIST } from './ide.js';
import { telemetrySchema } from './schema.js';
import { createGraphqlWsServer } from './ws.js';

/** Settings of the GraphQL endpoint. */
export interface GraphqlSettings extends PipelineSettings {
  /** Most operations in one array-batched POST; 0 turns array batching off. */
  maxBatch: number;
  /** Serve GraphiQL at GET /graphql (default true). */
  ide?: boolean;
  /** The built GraphiQL (default dist/web/graphiql, see ide.ts). */
  ideDir?: string;
  /** Cluster id in the IDE's starting query. */
  defaultClusterId?: string;
  /** Largest POST body, bytes (default 1 MiB). */
  bodyLimit?: number;
  /** graphql-ws settings; absent: no subscriptions (no WebSocket on /graphql). */
  subscriptions?: {
    initTimeoutMs: number;
    keepAliveMs: number;
    maxPayload: number;
    maxConnections: number;
    /** Most operations at once on one connection. */
    maxOperations: number;
    /** Bytes a client may have unsent before it is dropped (WS_MAX_BUFFERED). */
    maxBuffered: number;
  };
  /** Events queued for a subscription before its client is dropped (default 1000). */
  maxQueuedEvents?: number;
  /** How long a snapshot of the hierarchy's size serves the cost model, ms (default 1000). */
  cardinalityTtlMs?: number;
}

/** Options of {@link graphqlPlugin}. */
export interface GraphqlPluginOptions {
  settings: GraphqlSettings;
  services: Omit<GraphqlServices, 'maxQueuedEvents'>;
  upgrades: Map<string, UpgradeTarget>;
  logger: Logger;
}

/** Path of the GraphQL endpoint. */
export const GRAPHQL_PATH = '/graphql';

/** Register GraphQL. */
export const graphqlPlugin: FastifyPluginAsync<GraphqlPluginOptions> = async (app, options) => {
  const { settings, logger } = options;
  const schema = telemetrySchema();
  const services: GraphqlServices = {
    ...options.services,
    maxQueuedEvents: settings.maxQueuedEvents ?? 1000,
  };
  const sizes = new CardinalityCache(services.reader, settings.cardinalityTtlMs ?? 1000, logger);
  const pipeline: PipelineSettings = {
    limits: settings.limits,
    introspection: settings.introspection,
    cardinality: () => sizes.current(),
  };

  await app.register(graphqlHttpRoutes, {
    schema,
    services,
    settings: pipeline,
    maxBatch: settings.maxBatch,
    ide: settings.ide ?? true,
    ideDir: settings.ideDir ?? GRAPHIQL_DIST,
    defaultClusterId: settings.defaultClusterId ?? 'my-cluster',
    bodyLimit: settings.bodyLimit ?? 1024 * 1024,
    logger,
    sizes,
  });

  const subs = settings.subscriptions;
  if (subs && services.hub) {
    const server = createGraphqlWsServer({
      schema,
      services,
      settings: pipeline,
      initTimeoutMs: subs.initTimeoutMs,
      keepAliveMs: subs.keepAliveMs,
      maxPayload: subs.maxPayload,
      maxOperations: subs.maxOperations,
      maxBuffered: subs.maxBuffered,
      logger,
    });
    options.upgrades.set(GRAPHQL_PATH, { wss: server.wss, maxConnections: subs.maxConnections });
    app.addHook('preClose', async () => {
      options.upgrades.delete(GRAPHQL_PATH);
      await server.close();
    });
  }
};
