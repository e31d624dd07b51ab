/**
 * GraphQL over HTTP: POST /graphql (a JSON request, or an array of them when batching is on, up to
 * the batch limit), GET /graphql?query=... for queries, and GraphiQL (ide.ts) at GET /graphql
 * without a query from a browser (Accept: text/html), its assets under /graphql/assets/. Requests
 * refused before execution (bad JSON, parse, limits, validation) answer 400 with `{ errors }`;
 * executed ones answer 200 with `{ data, errors? }`. Never a 500 for a bad document.
 * An array batch is costed as a whole (the sum of its operations must be within GRAPHQL_MAX_COST)
 * and its operations share one read budget (READ_TIMEOUT, READ_MAX_ROWS).
 */
import fastifyStatic from '@fastify/static';
import type { FastifyError, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import type { GraphQLSchema } from 'graphql';
import { execute } from './graphql.js';
import type { Logger } from '../../util/logger.js';
import { NexusError } from '../../errors.js';
import { toErrorResponse } from '../errors.js';
import { operationContext, type GraphqlServices } from './context.js';
import type { ReadBudget } from '../read-limiter.js';
import type { CardinalityCache } from './cardinality.js';
import { formatResult, prepareOperation, type Prepared, type PipelineSettings } from './execute.js';
import { tooCostly } from './limits.js';
import { acceptsHtml, GRAPHIQL_ASSETS_PREFIX, IDE_CSP, ideConfig, injectConfig, readIdeHtml } from './ide.js';

/** Options of {@link graphqlHttpRoutes}. */
export interface GraphqlHttpOptions {
  schema: GraphQLSchema;
  services: GraphqlServices;
  settings: PipelineSettings;
  /** Most operations in one array-batched POST; 0 turns array batching off. */
  maxBatch: number;
  /** Serve GraphiQL at GET /graphql (default true). */
  ide: boolean;
  /** The built GraphiQL (dist/web/graphiql). */
  ideDir: string;
  /** Cluster id the IDE's starting query asks for. */
  defaultClusterId: string;
  /** Largest POST body in bytes. */
  bodyLimit: number;
  logger: Logger;
  /** Size of the fleet for the cost model; refreshed before each request is costed. */
  sizes?: CardinalityCache;
}

interface HttpAnswer {
  status: number;
  body: unknown;
}

const errorBody = (code: string, message: string) => ({ errors: [{ message, extensions: { code } }] });

/** Routes of GraphQL over HTTP. */
export const graphqlHttpRoutes: FastifyPluginAsync<GraphqlHttpOptions> = async (app, options) => {
  const { schema, services, settings, logger } = options;

  /** Prepare one request; an answer when it is refused before execution. */
  const prepare = (request: unknown, method: 'GET' | 'POST'): Prepared | HttpAnswer => {
    const prepared = prepareOperation(schema, request, settings);
    if (!prepared.ok) return { status: 400, body: formatResult({ errors: prepared.errors }) };
    const { operation } = prepared.prepared;
    if (operation.operation === 'subscription') {
      return {
        status: 400,
        body: errorBody(
          'BAD_REQUEST',
          'subscriptions are served over WebSocket at /graphql (graphql-transport-ws protocol)',
        ),
      };
    }
    if (method === 'GET' && operation.operation !== 'query') {
      return { status: 405, body: errorBody('BAD_REQUEST', 'only queries can be sent with GET; use POST') };
    }
    return prepared;
  };

  const isAnswer = (p: Prepared | HttpAnswer): p is HttpAnswer => 'status' in p;

  /** Execute a prepared operation with the request's read budget. */
  const execute1 = async (p: Prepared | HttpAnswer, budget: ReadBudget | undefined): Promise<HttpAnswer> => {
    if (isAnswer(p)) return p;
    if (!p.ok) return { status: 400, body: formatResult({ errors: p.errors }) };
    const { document, operationName, variableValues } = p.prepared;
    const result = await execute({
      schema,
      document,
      operationName,
      variableValues,
      contextValue: operationContext(services, undefined, budget),
    });
    // No data at all: the request failed before execution (variables that do not coerce).
    return { status: result.data === undefined ? 400 : 200, body: formatResult(result, logger) };
  };

  const run = async (request: unknown, method: 'GET' | 'POST'): Promise<HttpAnswer> => {
    await options.sizes?.fresh();
    return execute1(prepare(request, method), services.reads?.budget());
  };

  // Errors raised before the handler (bad JSON, wrong content type, body too large) in GraphQL's shape.
  const errorHandler = (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const { status, body } = toErrorResponse(error);
    if (status >= 500) logger.error({ err: error }, 'GraphQL request failed');
    return reply.status(status).send(errorBody(body.error.code, body.error.message));
  };

  // With authentication installed the page starts with an Authorization header to fill in: the
  // page itself is public (auth/scopes.ts), every request it makes carries the token.
  const auth = app.hasRequestDecorator('principal');
  const sendIde = async (reply: FastifyReply): Promise<FastifyReply> => {
    const html = await readIdeHtml(options.ideDir);
    if (html === undefined) {
      const missing = new NexusError(
        'WEB_NOT_BUILT',
        `GraphiQL is not built (${options.ideDir} is missing): run \`npm run build\``,
      );
      const { status, body } = toErrorResponse(missing);
      return reply.status(status).header('cache-control', 'no-cache').send(body);
    }
    return reply
      .header('content-security-policy', IDE_CSP)
      .header('x-content-type-options', 'nosniff')
      .header('cache-control', 'no-cache')
      .type('text/html; charset=utf-8')
      .send(injectConfig(html, ideConfig(options.defaultClusterId, auth)));
  };

  app.post(
    '/graphql',
    { schema: { hide: true }, bodyLimit: options.bodyLimit, errorHandler },
    async (request, reply) => {
      const body = request.body;
      if (!Array.isArray(body)) {
        const answer = await run(body, 'POST');
        return reply.status(answer.status).send(answer.body);
      }
      if (options.maxBatch === 0)
        return reply
          .status(400)
          .send(errorBody('BATCH_DISABLED', 'array batching is turned off on this server'));
      if (body.length === 0 || body.length > options.maxBatch) {
        return reply
          .status(400)
          .send(
            errorBody(
              'BATCH_TOO_LARGE',
              `a batch holds 1 to ${options.maxBatch} operations; got ${body.length}`,
            ),
          );
      }
      // Costed as a whole, run with one read budget: a batch is one request's worth of work.
      await options.sizes?.fresh();
      const prepared = body.map((item) => prepare(item, 'POST'));
      const cost = prepared.reduce((sum, p) => sum + (!isAnswer(p) && p.ok ? p.prepared.cost : 0), 0);
      if (cost > settings.limits.maxCost) {
        const error = tooCostly(`the batch of ${body.length} operations`, cost, settings.limits.maxCost);
        return reply.status(400).send(formatResult({ errors: [error] }));
      }
      const budget = services.reads?.budget();
      const answers: unknown[] = [];
      for (const p of prepared) answers.push((await execute1(p, budget)).body);
      return reply.send(answers);
    },
  );

  app.get<{ Querystring: Record<string, unknown> }>(
    '/graphql',
    { schema: { hide: true }, errorHandler },
    async (request, reply) => {
      const { query, variables, operationName } = request.query;
      if (query === undefined) {
        if (options.ide && acceptsHtml(request.headers.accept)) return sendIde(reply);
        return reply.status(400).send(errorBody('BAD_REQUEST', 'missing "query" parameter'));
      }
      let parsedVariables: unknown = undefined;
      if (typeof variables === 'string' && variables !== '') {
        try {
          parsedVariables = JSON.parse(variables);
        } catch {
          return reply.status(400).send(errorBody('BAD_REQUEST', '"variables" is not JSON'));
        }
      }
      const answer = await run({ query, variables: parsedVariables, operationName }, 'GET');
      return reply.status(answer.status).send(answer.body);
    },
  );

  if (options.ide) {
    await app.register(fastifyStatic, {
      root: `${options.ideDir}/assets`,
      prefix: GRAPHIQL_ASSETS_PREFIX,
      // Names carry a content hash: a file never changes under its name.
      maxAge: '365d',
      immutable: true,
      // The build writes .br and .gz beside each asset (web/graphiql/vite.config.ts).
      preCompressed: true,
      index: false,
      decorateReply: false,
      schemaHide: true,
    });
  }
};
