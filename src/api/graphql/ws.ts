/**
 * GraphQL over WebSocket (graphql-ws, subprotocol graphql-transport-ws) on a `ws` server in noServer
 * mode; the app's upgrade router hands it the connections for /graphql. Every operation goes through
 * the same pipeline and limits as HTTP. Protocol violations close the socket with the protocol's
 * codes (4400 bad message, 4401 subscribe before init, 4406 wrong subprotocol, 4408 no init in time,
 * 4409 duplicate id, 4429 duplicate init); a subscriber that falls too far behind is closed with
 * 4503 and cut off.
 */
import type { ExecutionArgs, GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Logger } from '../../util/logger.js';
import { dropSlowSocket } from '../ws/close.js';
import { execute } from './graphql.js';
import { sharedSubscribe } from './shared-subscribe.js';
import { operationContext, type GraphqlServices } from './context.js';
import { formatErrors, formatResult, prepareOperation, type PipelineSettings } from './execute.js';
import { limitError } from './limits.js';

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
  logger: Logger;
}

/** A graphql-ws server waiting for upgraded connections. */
export interface GraphqlWsServer {
  readonly wss: WebSocketServer;
  /** Close every connection (1001) and the server. */
  close(): Promise<void>;
}

/** Create the graphql-ws server (connections arrive through `wss.handleUpgrade`). */
export function createGraphqlWsServer(options: GraphqlWsOptions): GraphqlWsServer {
  const { schema, services, settings, logger } = options;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload,
    perMessageDeflate: false,
  });
  const disposable = useServer<Record<string, unknown> | undefined, { socket: WebSocket }>(
    {
      schema,
      // Our own graphql functions, so the schema and the executor always come from one copy of the
      // package (test runners may load graphql-ws's import of it as a second, ESM copy).
      execute,
      subscribe: sharedSubscribe,
      isProd: true,
      connectionInitWaitTimeout: options.initTimeoutMs,
      onSubscribe: (ctx, _id, payload) => {
        if (Object.keys(ctx.subscriptions).length > options.maxOperations) {
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
    },
    wss,
    options.keepAliveMs,
  );
  return {
    wss,
    async close() {
      // Clients get 1001; one that does not finish the closing handshake soon is cut off.
      const timer = setTimeout(() => {
        for (const client of wss.clients) client.terminate();
      }, 1000);
      try {
        await disposable.dispose();
      } finally {
        clearTimeout(timer);
      }
    },
  };
}
