/**
 * The one `upgrade` listener of the HTTP server: routes WebSocket handshakes by path to the server
 * that owns it (/graphql: graphql-ws, /ws: the event stream), after checking the Origin (403; see
 * `originAllowed` in ../cors.ts: the allowlist, or same-origin on a Host the server is known by, so
 * DNS rebinding is refused), the path's connection limit (503) and, with authentication on, the
 * bearer header if one is sent (401/403, ../auth/ws.ts). Any other path gets 404. Refusals
 * are plain HTTP responses with a JSON error body, before any WebSocket exists. Nothing thrown while
 * routing a handshake escapes the listener: the socket is destroyed and the error logged. An
 * accepted connection's sends are written once per turn of the event loop (./coalesce-sends.ts).
 */
import { STATUS_CODES, type IncomingMessage, type Server } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { Logger } from '../../util/logger.js';
import { authenticateHandshake, type WsAuth } from '../auth/ws.js';
import { coalesceSends } from './coalesce-sends.js';

/** Where handshakes for one path go. */
export interface UpgradeTarget {
  wss: WebSocketServer;
  /** Most open connections on this path; more get 503. */
  maxConnections: number;
}

/** Options of {@link installUpgradeRouter}. */
export interface UpgradeRouterOptions {
  /** Targets by exact path. */
  routes: ReadonlyMap<string, UpgradeTarget>;
  /**
   * Whether a browser at `origin` may connect (`host` is the request's Host header; `origin` is
   * undefined for clients that send none, such as curl or the `ws` library).
   */
  allowOrigin: (origin: string | undefined, host: string | undefined) => boolean;
  logger: Logger;
  /**
   * Authentication (absent: none): a handshake's bearer header is checked here (401/403); without
   * one the endpoint authenticates in-band (see ../auth/ws.ts).
   */
  auth?: WsAuth;
}

/** Answer a handshake with a plain HTTP error and close the socket. */
export function refuseUpgrade(socket: Duplex, status: number, code: string, message: string): void {
  const body = JSON.stringify({ error: { code, message } });
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\n` +
      'Connection: close\r\n' +
      'Content-Type: application/json; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
}

function headerText(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

/** Install the router on `server`; returns a function that removes it. */
export function installUpgradeRouter(server: Server, options: UpgradeRouterOptions): () => void {
  const route = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    const path = (request.url ?? '/').split('?')[0] ?? '/';
    const target = options.routes.get(path);
    if (!target)
      return refuseUpgrade(socket, 404, 'NOT_FOUND', `no WebSocket endpoint at ${path.slice(0, 100)}`);
    // Version 8 handshakes carry the browser's origin as Sec-WebSocket-Origin.
    const origin = request.headers.origin ?? headerText(request.headers['sec-websocket-origin']);
    if (!options.allowOrigin(origin, request.headers.host)) {
      options.logger.info({ origin: origin?.slice(0, 200), path }, 'WebSocket origin refused');
      return refuseUpgrade(
        socket,
        403,
        'FORBIDDEN_ORIGIN',
        'this Origin may not open WebSockets here (CORS_ORIGINS)',
      );
    }
    if (target.wss.clients.size >= target.maxConnections) {
      return refuseUpgrade(
        socket,
        503,
        'TOO_MANY_CONNECTIONS',
        `at most ${target.maxConnections} connections on ${path}`,
      );
    }
    const accept = (): void =>
      target.wss.handleUpgrade(request, socket, head, (ws) => {
        coalesceSends(ws, socket);
        target.wss.emit('connection', ws, request);
      });
    if (!options.auth) return accept();
    authenticateHandshake(request, options.auth).then(
      (refusal) =>
        refusal ? refuseUpgrade(socket, refusal.status, refusal.code, refusal.message) : accept(),
      (error: unknown) => {
        options.logger.error({ err: error }, 'WebSocket handshake authentication failed');
        refuseUpgrade(socket, 503, 'BACKEND_UNAVAILABLE', 'cannot check credentials now; retry later');
      },
    );
  };
  const onUpgrade = (request: IncomingMessage, socket: Duplex, head: Buffer): void => {
    // A client resetting mid-handshake must not become an unhandled 'error' event.
    socket.on('error', (error) => options.logger.debug({ err: error }, 'WebSocket handshake socket error'));
    try {
      route(request, socket, head);
    } catch (error) {
      options.logger.error({ err: error }, 'WebSocket handshake failed');
      socket.destroy();
    }
  };
  server.on('upgrade', onUpgrade);
  return () => server.off('upgrade', onUpgrade);
}
