/**
 * GET /api/v1/dead-letters: input rows the pipeline refused, newest first, optionally from one source.
 */
import type { FastifyPluginAsync } from 'fastify';
import { requestStore, type ApiContext } from '../context.js';
import { DEFAULT_LIMIT, deadLetterQuerySchema, deadLetterSchema, errorResponses } from '../schemas.js';
import { deadLetterView } from '../views.js';

/** Route listing dead letters. */
export const deadLetterRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  app.get<{ Querystring: { limit?: number; source?: string } }>(
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
      const { limit = DEFAULT_LIMIT, source } = request.query;
      const rows = await requestStore(ctx).listDeadLetters(
        source === undefined ? { limit } : { limit, source },
      );
      return rows.map(deadLetterView);
    },
  );
};
