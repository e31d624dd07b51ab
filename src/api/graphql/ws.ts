/**
 * GraphQL over WebSocket (graphql-ws, subprotocol graphql-transport-ws) on a `ws` server in noServer
 * mode; the app's upgrade router hands it the connections for /graphql. Every operation goes through
 * the same pipeline and limits as HTTP. Protocol violations close the socket with the protocol's
 * codes (4400 bad message, 4401 subscribe before init, 4406 wrong subprotocol, 4408 no init in time,
 * 4409 duplicate id, 4429 duplicate init); a subscriber that falls too far behind is closed with
 * 4503 and cut off. Sends wait for the network when a client has bytes left unread (backpressure):
 * a subscription that cannot send queues its events (../../events/iterator.ts), and one that falls
 * too far behind there is the slow client that is dropped.
 *
 * graphql-ws's protocol engine (`makeServer`) is wired to the sockets here rather than through its
 * `useServer`, so that every frame is screened before the engine sees it: a message nested more than
 * MAX_MESSAGE_DEPTH levels deep (which the engine would echo or walk recursively), text that is not
 * JSON, and messages only a server may send (`connection_ack`, `next`, `error`) close the connection
 * with 4400. Anything thrown while handling a message is logged and closes that connection with 4500
 * ("Internal server error"); the process keeps running. Close reasons are cut to fit a close frame.
 * With authentication on, `connection_init` carries the credential unless the handshake did (closes
 * 4401 / 4403, and 4401 once it is revoked: ../auth/ws.ts).
 */
import type { IncomingMessage } from 'node:http';
import type { ExecutionArgs, GraphQLSchema } from 'graphql';
import { CloseCode as GqlCloseCode, handleProtocols, makeServer } from 'graphql-ws';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Logger } from '../../util/logger.js';
import { closeReason, dropSlowSocket } from '../ws/close.js';
import { unsentBytes } from '../ws/coalesce-sends.js';
import { turnRunningMs } from '../../util/loop-turn.js';
import { jsonDepthExceeds, MAX_MESSAGE_DEPTH } from '../ws/protocol.js';
import { execute } from './graphql.js';
import { sharedSubscribe } from './shared-subscribe.js';
import { operationContext, type GraphqlServices } from './context.js';
import { formatErrors, formatResult, prepareOperation, type PipelineSettings } from './execute.js';
import { limitError } from './limits.js';
import { authenticateInBand, credentialFromInitPayload, guardSocket, upgradeAuth } from '../auth/ws.js';

/** Options of {@link createGraphqlWsServer}. */
export interface GraphqlWsOptions {
  schema: GraphQLSchema;
  services: GraphqlServices;
  settings: PipelineSettings;
  /** Close a connection that has not sent connection_init within this many ms (4408). */
  initTimeoutMs: number;
  /** Ping every this many ms; a client that has not answered the previous ping is terminated. */
  keepAliveMs: number;
  /** Largest message accepted, bytes (bigger: close 1009). */
  maxPayload: number;
  /** Most operations running at once on one connection. */
  maxOperations: number;
  /**
   * Bytes a connection may have unsent before its sends wait for the network (WS_MAX_BUFFERED):
   * a send waits when the bytes of earlier turns pass 64 KiB (or half of this, if less), or all
   * unsent bytes pass this.
   */
  maxBuffered: number;
  logger: Logger;
}

/** A graphql-ws server waiting for upgraded connections. */
export interface GraphqlWsServer {
  readonly wss: WebSocketServer;
  /** Close every connection (1001) and the server. */
  close(): Promise<void>;
}

/** Longest the sends of one turn of the event loop run before a send lets the loop turn, ms. */
const MAX_TURN_MS = 10;

/** Message types a client may send (graphql-transport-ws); the others are the server's. */
const CLIENT_MESSAGE_TYPES = new Set(['connection_init', 'ping', 'pong', 'subscribe', 'complete']);

/** What the protocol engine gets to know about a connection. */
interface Extra {
  socket: WebSocket;
  request: IncomingMessage;
  /**
   * Ids of the operations whose handling has not ended. graphql-ws forgets an operation when the
   * client completes it, while its loop may still wait on a send; an id reused meanwhile would be
   * taken for the old operation's and the new one lost track of, so it is refused (4409), and the
   * operation limit counts these.
   */
  running: Set<string>;
}

/** A client frame as screened: why it must not reach the protocol engine, or its type and id. */
type Screened = { refusal: string } | { refusal?: undefined; type: unknown; id: unknown };

function screen(text: string): Screened {
  if (jsonDepthExceeds(text, MAX_MESSAGE_DEPTH))
    return { refusal: `Message nested more than ${MAX_MESSAGE_DEPTH} levels deep` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return { refusal: 'Invalid message received' };
  }
  const message =
    typeof value === 'object' && value !== null ? (value as { type?: unknown; id?: unknown }) : {};
  const type = message.type;
  if (typeof type === 'string' && type !== '' && !CLIENT_MESSAGE_TYPES.has(type))
    return { refusal: `Unexpected message of type ${type.slice(0, 40)} received` };
  return { type, id: message.id };
}

/**
 * Why a client frame must not reach the protocol engine (close 4400), or undefined when it may.
 * Only the nesting depth, JSON syntax and `type` are judged here; the engine checks the rest.
 */
export function screenGraphqlWsMessage(text: string): string | undefined {
  return screen(text).refusal;
}

function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data).toString('utf8');
  return Buffer.from(data).toString('utf8');
}

/** Close unless already closing; a close that throws becomes a terminate. Never throws. */
function closeSocket(socket: WebSocket, code: number, reason: string): void {
  if (socket.readyState === socket.CLOSING || socket.readyState === socket.CLOSED) return;
  try {
    socket.close(code, closeReason(reason));
  } catch {
    socket.terminate();
  }
}

/** Create the graphql-ws server (connections arrive through `wss.handleUpgrade`). */
export function createGraphqlWsServer(options: GraphqlWsOptions): GraphqlWsServer {
  const { schema, services, settings, logger, maxBuffered } = options;
  const pauseBytes = Math.min(64 * 1024, Math.floor(maxBuffered / 2));
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload,
    perMessageDeflate: false,
    handleProtocols: (protocols) => handleProtocols(protocols),
  });
  const engine = makeServer<Record<string, unknown> | undefined, Extra>({
    schema,
    // Our own graphql functions, so the schema and the executor always come from one copy of the
    // package (test runners may load graphql-ws's import of it as a second, ESM copy).
    execute,
    subscribe: sharedSubscribe,
    connectionInitWaitTimeout: options.initTimeoutMs,
    // With authentication on: the handshake's header (checked by the upgrade router), else the
    // connection_init payload's `authorization` / `token`; refused: closed 4401 / 4403.
    onConnect: async (ctx) => {
      const auth = upgradeAuth(ctx.extra.request);
      if (auth === undefined) return true;
      const { socket } = ctx.extra;
      const principal =
        auth.principal ??
        (await authenticateInBand(socket, auth.auth, credentialFromInitPayload(ctx.connectionParams)));
      if (principal === undefined) return false;
      guardSocket(socket, principal, auth.auth, logger);
      return true;
    },
    onSubscribe: (ctx, _id, payload) => {
      if (ctx.extra.running.size > options.maxOperations) {
        return [
          limitError(
            'TOO_MANY_OPERATIONS',
            `at most ${options.maxOperations} operations may run at once on one connection`,
          ),
        ];
      }
      const prepared = prepareOperation(schema, payload, settings);
      if (!prepared.ok) return prepared.errors;
      const { document, operationName, variableValues } = prepared.prepared;
      const socket = ctx.extra.socket;
      const args: ExecutionArgs = {
        schema,
        document,
        operationName,
        variableValues,
        contextValue: operationContext(services, () =>
          dropSlowSocket(socket, 'subscription fell too far behind'),
        ),
      };
      return args;
    },
    onNext: (_ctx, _id, _payload, _args, result) =>
      result.errors ? formatResult(result, logger) : undefined,
    onError: (_ctx, _id, _payload, errors) => formatErrors(errors, logger),
  });

  wss.on('error', (error) => logger.error({ err: error }, 'graphql-ws server error'));
  wss.on('connection', (socket: WebSocket, request: IncomingMessage) => {
    // Runs inside the HTTP server's 'upgrade' event: anything thrown here would be uncaught.
    try {
      open(socket, request);
    } catch (error) {
      logger.error({ err: error }, 'opening a graphql-ws connection failed');
      closeSocket(socket, GqlCloseCode.InternalServerError, 'Internal server error');
    }
  });

  function open(socket: WebSocket, request: IncomingMessage): void {
    // The ws library reports bad frames (over maxPayload: 1009, bad UTF-8: 1007) here and closes.
    socket.on('error', (error) => logger.debug({ err: error }, 'graphql-ws client error'));

    let awaitingPong = false;
    socket.on('pong', () => (awaitingPong = false));
    const keepAlive =
      options.keepAliveMs > 0 && Number.isFinite(options.keepAliveMs)
        ? setInterval(() => {
            if (socket.readyState !== socket.OPEN) return;
            if (awaitingPong) return socket.terminate();
            awaitingPong = true;
            socket.ping();
          }, options.keepAliveMs)
        : undefined;
    keepAlive?.unref();

    const running = new Set<string>();
    /**
     * Sends waiting for their frame to be written, and how many may: a subscription waits on one at
     * a time; twice the operations (one ending while its successor starts) and two more.
     */
    let waitingSends = 0;
    const maxWaitingSends = 2 * options.maxOperations + 2;

    const failed = (error: unknown): void => {
      // A send that failed because the client went away is not the server's fault.
      if (socket.readyState === socket.OPEN)
        logger.error({ err: error }, 'graphql-ws message handling failed; closing the connection');
      else logger.debug({ err: error }, 'graphql-ws message handling ended by a closed connection');
      closeSocket(socket, GqlCloseCode.InternalServerError, 'Internal server error');
    };

    const closed = engine.opened(
      {
        protocol: socket.protocol,
        // Returns at once while the client keeps up: graphql-ws awaits each send before a
        // subscription's next result, so waiting for every write cost every subscriber a turn of
        // the event loop per event (and kept its results out of the turn's coalesced write,
        // ../ws/coalesce-sends.ts). When the client has bytes left unread from earlier turns, or
        // unsent bytes pass WS_MAX_BUFFERED, the send waits until its frame is written: the
        // subscription's events then queue in its iterator, whose bound drops a client that stays
        // behind (4503); a client that reads slowly gets a snapshot or a large round at the
        // network's pace instead of being dropped. Frames not paced by a subscription (pongs,
        // errors, query results: graphql-ws handles each message on its own) are bounded by the
        // number of sends left waiting: more than twice the operations and two more, and the
        // client is dropped (4503). A long burst lets the event loop turn every MAX_TURN_MS. Once the
        // socket is not open, sending throws: that ends the subscription's loop (and discards its
        // queue) instead of executing every queued event for nobody.
        send: (data) => {
          if (socket.readyState !== socket.OPEN) throw new Error('the GraphQL connection is closed');
          if (unsentBytes(socket) >= pauseBytes || socket.bufferedAmount >= maxBuffered) {
            if (waitingSends >= maxWaitingSends) {
              logger.warn(
                { buffered: socket.bufferedAmount, waiting: waitingSends },
                'dropping a slow GraphQL client',
              );
              dropSlowSocket(socket, `more than ${maxWaitingSends} messages waiting to be sent`);
              throw new Error('the GraphQL client was dropped: it does not read what it is sent');
            }
            waitingSends += 1;
            return new Promise<void>((resolve) =>
              socket.send(data, (error) => {
                waitingSends -= 1;
                if (error) logger.debug({ err: error }, 'graphql-ws send failed; the connection is closing');
                resolve();
              }),
            );
          }
          socket.send(data, (error) => {
            if (error) logger.debug({ err: error }, 'graphql-ws send failed; the connection is closing');
          });
          if (turnRunningMs() > MAX_TURN_MS) return new Promise<void>((resolve) => setImmediate(resolve));
        },
        close: (code, reason) => closeSocket(socket, code ?? 1000, reason ?? ''),
        onMessage: (handle) =>
          socket.on('message', (data: RawData) => {
            try {
              const text = rawText(data);
              const screened = screen(text);
              if (screened.refusal !== undefined)
                return closeSocket(socket, GqlCloseCode.BadRequest, screened.refusal);
              const { type, id } = screened;
              if (type === 'subscribe' && typeof id === 'string') {
                if (running.has(id))
                  return closeSocket(
                    socket,
                    GqlCloseCode.SubscriberAlreadyExists,
                    `Subscriber for ${id} already exists`,
                  );
                running.add(id);
                handle(text)
                  .catch(failed)
                  .finally(() => running.delete(id));
                return;
              }
              handle(text).catch(failed);
            } catch (error) {
              failed(error);
            }
          }),
      },
      { socket, request, running },
    );

    socket.once('close', (code, reason) => {
      if (keepAlive) clearInterval(keepAlive);
      closed(code, String(reason)).catch((error: unknown) =>
        logger.error({ err: error }, 'graphql-ws connection cleanup failed'),
      );
    });
  }

  return {
    wss,
    async close() {
      for (const client of wss.clients) closeSocket(client, 1001, 'Going away');
      // Clients that do not finish the closing handshake soon are cut off.
      const timer = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
      }, 1000);
      try {
        await new Promise<void>((resolve, reject) =>
          wss.close((error) => (error ? reject(error) : resolve())),
        );
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
