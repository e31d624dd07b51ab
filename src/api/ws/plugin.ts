/**
 * Fastify plugin of the /ws event stream: creates the stream server, registers it with the upgrade
 * router under /ws, answers a plain GET /ws with 426 Upgrade Required, and closes every connection
 * before the HTTP server closes. Subscriptions naming a cluster are checked against the live
 * hierarchy in `coordination` (when given): an unknown cluster is NOT_FOUND.
 */
import type { FastifyPluginAsync } from 'fastify';
import type { EventHub } from '../../events/hub.js';
import type { Coordination } from '../../ports/coordination.js';
import type { Logger } from '../../util/logger.js';
import { coordinationClusters, setClusterDirectory } from './connection.js';
import { createStreamServer } from './server.js';
import type { UpgradeTarget } from './upgrade.js';

/** Settings of the /ws endpoint. */
export interface WebSocketSettings {
  /** Heartbeat interval in ms (a client silent for a whole interval is terminated). */
  heartbeatMs: number;
  /** Largest client message in bytes. */
  maxPayload: number;
  /** Unsent bytes a client may have before it is dropped. */
  maxBuffered: number;
  /** Most open /ws connections. */
  maxConnections: number;
  /** Most subscriptions per connection. */
  maxSubscriptions: number;
}

/** Options of {@link streamPlugin}. */
export interface StreamPluginOptions extends WebSocketSettings {
  hub: EventHub;
  /** The app's upgrade routes; the plugin adds /ws. */
  upgrades: Map<string, UpgradeTarget>;
  logger: Logger;
  /** Store of the live hierarchy, for the unknown-cluster check (without it, cluster ids are not checked). */
  coordination?: Coordination;
}

/** Path of the event stream. */
export const WS_PATH = '/ws';

/** Register the /ws endpoint. */
export const streamPlugin: FastifyPluginAsync<StreamPluginOptions> = async (app, options) => {
  if (options.coordination) setClusterDirectory(options.hub, coordinationClusters(options.coordination));
  const server = createStreamServer({
    hub: options.hub,
    heartbeatMs: options.heartbeatMs,
    maxPayload: options.maxPayload,
    maxBuffered: options.maxBuffered,
    maxSubscriptions: options.maxSubscriptions,
    logger: options.logger,
    ...(options.coordination ? { alerts: options.coordination } : {}),
  });
  options.upgrades.set(WS_PATH, { wss: server.wss, maxConnections: options.maxConnections });
  app.addHook('preClose', async () => {
    options.upgrades.delete(WS_PATH);
    await server.close();
  });

  app.get(WS_PATH, { schema: { hide: true } }, async (_request, reply) =>
    reply
      .status(426)
      .header('upgrade', 'websocket')
      .header('connection', 'Upgrade')
      .send({
        error: {
          code: 'UPGRADE_REQUIRED',
          message:
            'GET /ws is a WebSocket endpoint: connect with a WebSocket client (see docs/ws-protocol.md)',
        },
      }),
  );
};
