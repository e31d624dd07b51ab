/**
 * GPU health routes (docs/alerting.md, "Health model"):
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/health   one GPU's health
 *   GET /api/v1/health/gpus?state=warning,critical[&cluster=c]          the fleet's GPUs by state
 * Health comes from the live hierarchy (stored with each GPU record, STALE added at read time).
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import { NexusError } from '../../errors.js';
import type { HealthState } from '../../health/types.js';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import { errorResponses, gpuHealthEntrySchema, gpuParams, noQuerySchema } from '../schemas.js';
import { gpuHealthEntryView } from '../views.js';
import { throwHostNotFound } from './clusters.js';

const STATES: readonly HealthState[] = ['ok', 'warning', 'critical'];

/** The states of a `state` parameter (comma-separated); every state when absent. */
export function parseStates(text: string | undefined): Set<HealthState> {
  if (text === undefined || text.trim() === '') return new Set(STATES);
  const out = new Set<HealthState>();
  for (const part of text.split(',')) {
    const s = part.trim();
    if (!(STATES as readonly string[]).includes(s))
      throw new NexusError('BAD_REQUEST', `state '${s}' is not one of ${STATES.join(', ')}`);
    out.add(s as HealthState);
  }
  return out;
}

const fleetQuery = {
  type: 'object',
  additionalProperties: false,
  properties: {
    state: {
      type: 'string',
      maxLength: 64,
      description: 'Comma-separated states to list (ok, warning, critical); default all',
    },
    cluster: { type: 'string', minLength: 1, maxLength: 256, description: 'Only this cluster' },
  },
} as const;

/** Routes for GPU health. */
export const gpuHealthRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus/:gpuId/health',
    {
      schema: {
        tags: ['gpus'],
        summary: "One GPU's health: state, since when, and the reasons",
        params: gpuParams,
        querystring: noQuerySchema,
        response: { 200: gpuHealthEntrySchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const { clusterId, hostId, gpuId } = request.params;
      const gpu = await ctx.reader.getGpu(clusterId, hostId, gpuId);
      if (gpu) return gpuHealthEntryView(gpu);
      if (!(await ctx.reader.getHost(clusterId, hostId))) return throwHostNotFound(ctx, clusterId, hostId);
      throw notFound(`GPU '${gpuId}' not found on host '${hostId}' in cluster '${clusterId}'`);
    },
  );

  api.get(
    '/api/v1/health/gpus',
    {
      schema: {
        tags: ['gpus'],
        summary: 'Health of every GPU of the fleet, filtered by state (most severe first)',
        querystring: fleetQuery,
        response: { 200: { type: 'array', items: gpuHealthEntrySchema }, ...errorResponses(400) },
      },
    },
    async (request) => {
      const states = parseStates(request.query.state);
      const cluster = request.query.cluster;
      const rank = (s: HealthState): number => STATES.indexOf(s);
      const gpus = (await ctx.reader.listAllGpus()).filter(
        (g) => states.has(g.gpuHealth.state) && (cluster === undefined || g.clusterId === cluster),
      );
      // Stable sort: most severe first, then the reader's cluster/host/index order.
      return gpus
        .map((g, i) => ({ g, i }))
        .sort((a, b) => rank(b.g.gpuHealth.state) - rank(a.g.gpuHealth.state) || a.i - b.i)
        .map(({ g }) => gpuHealthEntryView(g));
    },
  );
};
