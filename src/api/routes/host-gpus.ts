/**
 * GPU routes under a host, where a GPU is named by its index within the host or its UUID:
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/telemetry
 * GPU state comes from the live hierarchy; telemetry from the sample store (which also resolves
 * GPUs it holds samples for that the hierarchy does not list), read through the request's read
 * limits (context.ts `requestStore`).
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import type { SampleStore, StoredGpu } from '../../ports/sample-store.js';
import { requestStore, type ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import {
  errorResponses,
  gpuParams,
  gpuSchema,
  hostParams,
  noQuerySchema,
  telemetryQuerySchema,
  telemetryResponseSchema,
} from '../schemas.js';
import { prepareTelemetryQuery, sendTelemetryPage } from '../telemetry.js';
import { gpuView } from '../views.js';
import { throwHostNotFound } from './clusters.js';

/** Routes for the GPUs of one host and their telemetry. */
export const hostGpuRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus',
    {
      schema: {
        tags: ['gpus'],
        summary: 'GPUs of a host with their latest metrics',
        params: hostParams,
        querystring: noQuerySchema,
        response: {
          200: { type: 'array', items: gpuSchema },
          ...errorResponses(400, 404),
        },
      },
    },
    async (request) => {
      const { clusterId, hostId } = request.params;
      const gpus = await ctx.reader.listGpus(clusterId, hostId);
      if (!gpus) return throwHostNotFound(ctx, clusterId, hostId);
      return gpus.map(gpuView);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus/:gpuId',
    {
      schema: {
        tags: ['gpus'],
        summary: 'One GPU (by index within the host, or UUID) with its latest metrics',
        params: gpuParams,
        querystring: noQuerySchema,
        response: { 200: gpuSchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const { clusterId, hostId, gpuId } = request.params;
      const gpu = await ctx.reader.getGpu(clusterId, hostId, gpuId);
      if (gpu) return gpuView(gpu);
      if (!(await ctx.reader.getHost(clusterId, hostId))) return throwHostNotFound(ctx, clusterId, hostId);
      throw notFound(`GPU '${gpuId}' not found on host '${hostId}' in cluster '${clusterId}'`);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus/:gpuId/telemetry',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Samples of one GPU (raw or rollups, see resolution), newest first by default',
        params: gpuParams,
        querystring: telemetryQuerySchema,
        response: { 200: telemetryResponseSchema, ...errorResponses(400, 404, 422) },
      },
    },
    async (request, reply) => {
      const { clusterId, hostId, gpuId } = request.params;
      const query = prepareTelemetryQuery(request.query);
      const store = requestStore(ctx);
      const gpu = await resolveHostGpu(ctx, store, clusterId, hostId, gpuId);
      if (!gpu) {
        if (!(await ctx.reader.getHost(clusterId, hostId))) return throwHostNotFound(ctx, clusterId, hostId);
        throw notFound(`GPU '${gpuId}' not found on host '${hostId}' in cluster '${clusterId}'`);
      }
      const selector = { clusterId: gpu.clusterId, hostname: gpu.hostname, gpuId: gpu.gpuId };
      const page = await query.run(store, selector);
      return sendTelemetryPage(reply, page);
    },
  );
};

/** A GPU of a host by index or UUID: from the hierarchy, else from the series the store holds. */
async function resolveHostGpu(
  ctx: ApiContext,
  store: SampleStore,
  clusterId: string,
  hostname: string,
  gpuIdOrUuid: string,
): Promise<StoredGpu | undefined> {
  const live = await ctx.reader.getGpu(clusterId, hostname, gpuIdOrUuid);
  if (live) return live;
  const wanted = gpuIdOrUuid.toLowerCase();
  const stored = (await store.listGpus(clusterId)).filter((g) => g.hostname === hostname);
  return stored.find((g) => g.gpuId === gpuIdOrUuid) ?? stored.find((g) => g.uuid.toLowerCase() === wanted);
}
