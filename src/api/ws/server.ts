/**
 * The /ws event stream server: a `ws` server in noServer mode (the upgrade router hands it the
 * connections), one StreamConnection per client, and one heartbeat timer for all of them. A
 * connection's URL may carry a first subscription: `/ws?clusterId=..&hostId=..&gpuId=..&metrics=a,b
 * &eventTypes=..&after=..&snapshot=true`; plain `/ws` subscribes to every event, `?subscribe=none`
 * to nothing. A connection whose setup throws is closed with 1011; the server runs on. With
 * authentication on, a client without a handshake credential sends `{"type":"auth","token":..}`
 * first (docs/security.md).
 */
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket } from 'ws';
import { NexusError } from '../../errors.js';
import type { EventHub } from '../../events/hub.js';
import type { Coordination } from '../../ports/coordination.js';
import type { Logger } from '../../util/logger.js';
import { CloseCode, closeThenTerminate } from './close.js';
import { DEFAULT_SUBSCRIPTION_ID, StreamConnection, type InitialSubscription } from './connection.js';
import { parseCursorValue, parseFilter } from './protocol.js';
import type { Principal } from '../../auth/authenticator.js';
import { awaitAuthMessage, guardSocket, upgradeAuth } from '../auth/ws.js';

/** Options of {@link createStreamServer}. */
export interface StreamServerOptions {
  hub: EventHub;
  /** Ping every this many ms; a client silent for a whole interval is terminated. */
  heartbeatMs: number;
  /** Largest client message, bytes (bigger: close 1009). */
  maxPayload: number;
  /** Unsent bytes a client may have before it is dropped (close 4503). */
  maxBuffered: number;
  /** Most subscriptions per connection. */
  maxSubscriptions: number;
  logger: Logger;
  now?: () => number;
  /** Store of the alert instances (`stream: "alerts"` subscriptions). */
  alerts?: Coordination;
}

/** The running /ws server. */
export interface StreamServer {
  readonly wss: WebSocketServer;
  /** Open connections. */
  readonly connections: ReadonlySet<StreamConnection>;
  /** Close every connection (1001) and stop the heartbeat. */
  close(): Promise<void>;
}

const FILTER_PARAMS = ['clusterId', 'hostId', 'gpuId', 'metrics', 'eventTypes'] as const;

/** The first subscription a URL asks for, or undefined for `subscribe=none`. */
export function initialSubscription(url: string | undefined): InitialSubscription | undefined {
  const params = new URL(url ?? '/ws', 'http://localhost').searchParams;
  const mode = params.get('subscribe');
  if (mode === 'none' || mode === 'false') return undefined;
  const raw: Record<string, string> = {};
  for (const name of FILTER_PARAMS) {
    const value = params.get(name);
    if (value !== null) raw[name] = value;
  }
  const after = parseCursorValue(params.get('after') ?? undefined);
  const snapshot = params.get('snapshot');
  const waitForCluster = params.get('waitForCluster');
  const batch = params.get('batch');
  const stream = params.get('stream');
  if (stream !== null && stream !== 'telemetry' && stream !== 'alerts')
    throw new NexusError('BAD_REQUEST', 'stream must be "telemetry" or "alerts"', {
      details: { parameter: 'stream' },
    });
  return {
    filter: parseFilter(raw),
    ...(after !== undefined ? { after } : {}),
    snapshot: snapshot === 'true' || snapshot === '1',
    ...(waitForCluster === 'true' || waitForCluster === '1' ? { waitForCluster: true } : {}),
    ...(batch === 'true' || batch === '1' ? { batch: true } : {}),
    ...(stream === 'alerts' ? { stream: 'alerts' as const } : {}),
  };
}

/** Create the /ws server (connections arrive through `wss.handleUpgrade`). */
export function createStreamServer(options: StreamServerOptions): StreamServer {
  const now = options.now ?? Date.now;
  const log = options.logger.child({ component: 'ws' });
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload,
    perMessageDeflate: false,
  });
  const connections = new Set<StreamConnection>();

  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    // Runs inside the HTTP server's 'upgrade' event: anything thrown here would be uncaught.
    try {
      open(socket, request);
    } catch (error) {
      log.error({ err: error }, 'opening a WebSocket connection failed');
      closeThenTerminate(socket, CloseCode.InternalError, 'internal server error');
    }
  });

  function open(socket: WebSocket, request: IncomingMessage): void {
    // With authentication on: a handshake header was checked by the upgrade router; otherwise
    // the first message must be `auth` (../auth/ws.ts). Either way the credential is re-checked.
    const auth = upgradeAuth(request);
    if (auth === undefined) return openAuthenticated(socket, request);
    const opened = (principal: Principal): void => {
      guardSocket(socket, principal, auth.auth, log);
      openAuthenticated(socket, request);
    };
    if (auth.principal) return opened(auth.principal);
    awaitAuthMessage(socket, auth.auth, log, (principal) => {
      try {
        opened(principal);
      } catch (error) {
        log.error({ err: error }, 'opening a WebSocket connection failed');
        closeThenTerminate(socket, CloseCode.InternalError, 'internal server error');
      }
    });
  }

  function openAuthenticated(socket: WebSocket, request: IncomingMessage): void {
    const connection = new StreamConnection(socket, {
      hub: options.hub,
      maxBuffered: options.maxBuffered,
      maxSubscriptions: options.maxSubscriptions,
      heartbeatMs: options.heartbeatMs,
      maxPayload: options.maxPayload,
      log,
      ...(options.alerts ? { alerts: options.alerts } : {}),
    });
    connections.add(connection);
    socket.on('close', () => connections.delete(connection));
    let initial: InitialSubscription | undefined;
    try {
      initial = initialSubscription(request.url);
    } catch (error) {
      const message = error instanceof NexusError ? error.message : 'bad query parameters';
      socket.send(JSON.stringify({ type: 'error', code: 'BAD_REQUEST', message }));
      closeThenTerminate(socket, CloseCode.BadMessage, message);
      return;
    }
    if (initial) connection.subscribe(DEFAULT_SUBSCRIPTION_ID, initial);
  }

  const timer = setInterval(() => {
    const t = now();
    for (const connection of connections) {
      try {
        connection.heartbeat(t);
      } catch (error) {
        log.error({ err: error }, 'WebSocket heartbeat failed');
      }
    }
  }, options.heartbeatMs);
  timer.unref();

  return {
    wss,
    connections,
    async close() {
      clearInterval(timer);
      for (const connection of connections) connection.dispose();
      for (const client of wss.clients)
        closeThenTerminate(client, CloseCode.GoingAway, 'server shutting down');
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
