/**
 * GET /api/v1/services: the streamer, collector and API processes registered in service discovery.
 */
import type { FastifyPluginAsync } from 'fastify';
import { listServices } from '../../discovery/registry.js';
import type { ApiContext } from '../context.js';

const serviceSchema = {
  type: 'object',
  required: ['type', 'id', 'address', 'version', 'started_at', 'health'],
  properties: {
    type: { type: 'string', enum: ['streamer', 'collector', 'api'] },
    id: { type: 'string' },
    address: { type: 'string' },
    version: { type: 'string' },
    started_at: { type: 'string', format: 'date-time' },
    health: { type: 'string', enum: ['ok', 'degraded'] },
    pid: { type: 'integer' },
    hostname: { type: 'string' },
  },
} as const;

/** Route listing registered services. */
export const serviceRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  app.get(
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
      return records.map((r) => ({
        type: r.type,
        id: r.id,
        address: r.address,
        version: r.version,
        started_at: r.startedAt,
        health: r.health,
        pid: r.pid,
        hostname: r.hostname,
      }));
    },
  );
};
