/**
 * GET /api/v1/dead-letters: input rows the pipeline refused, newest first, optionally from one source.
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import { requestStore, type ApiContext } from '../context.js';
import { deadLetterQuerySchema, deadLetterSchema, errorResponses } from '../schemas.js';
import { deadLetterView } from '../views.js';

/** Route listing dead letters. */
export const deadLetterRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/api/v1/dead-letters',
    {
      schema: {
        tags: ['dead-letters'],
        summary: 'Refused input rows with line number and reason, newest first',
        querystring: deadLetterQuerySchema,
        response: {
          200: { type: 'array', items: deadLetterSchema },
          ...errorResponses(400),
        },
      },
    },
    async (request) => {
      const { limit, source } = request.query;
      const rows = await requestStore(ctx).listDeadLetters(
        source === undefined ? { limit } : { limit, source },
      );
      return rows.map(deadLetterView);
    },
  );
};
