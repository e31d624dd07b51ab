/**
 * GET /api/v1/services: the streamer, collector and API processes registered in service discovery.
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import { listServices } from '../../discovery/registry.js';
import type { ApiContext } from '../context.js';
import { serviceSchema } from '../schemas.js';
import { serviceView } from '../views.js';

/** Route listing registered services. */
export const serviceRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/api/v1/services',
    {
      schema: {
        tags: ['services'],
        summary: 'Pipeline processes registered in service discovery (each on a lease)',
        response: { 200: { type: 'array', items: serviceSchema } },
      },
    },
    async () => {
      const records = await listServices(ctx.deps.coordination);
      return records.map(serviceView);
    },
  );
};
