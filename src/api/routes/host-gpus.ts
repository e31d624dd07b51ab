/**
 * GPU routes under a host, where a GPU is named by its index within the host or its UUID:
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/telemetry
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/mig
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/mig/{instanceId}
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/{gpuId}/mig/{instanceId}/telemetry
 * GPU state comes from the live hierarchy; telemetry from the sample store (which also resolves
 * GPUs it holds samples for that the hierarchy does not list), read through the request's read
 * limits (context.ts `requestStore`). A GPU's telemetry is its own series only; each MIG instance
 * (dcgm-exporter's GPU_I_ID) has its own routes and series.
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
  migInstanceSchema,
  migParams,
  noQuerySchema,
  telemetryAnyResponseSchema,
  telemetryQuerySchema,
} from '../schemas.js';
import { prepareTelemetryQuery, sendTelemetryPage } from '../telemetry.js';
import { gpuView, migInstanceView } from '../views.js';
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
        response: { 200: telemetryAnyResponseSchema, ...errorResponses(400, 404, 422) },
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
      const page = await query.run(store, gpu, selector);
      return sendTelemetryPage(reply, page);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus/:gpuId/mig',
    {
      schema: {
        tags: ['gpus'],
        summary: 'MIG instances of one GPU with their own latest metrics (empty when MIG is off)',
        params: gpuParams,
        querystring: noQuerySchema,
        response: { 200: { type: 'array', items: migInstanceSchema }, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const { clusterId, hostId, gpuId } = request.params;
      const gpu = await ctx.reader.getGpu(clusterId, hostId, gpuId);
      if (!gpu) return throwGpuNotFound(ctx, clusterId, hostId, gpuId);
      return gpu.migInstances.map(migInstanceView);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus/:gpuId/mig/:instanceId',
    {
      schema: {
        tags: ['gpus'],
        summary: 'One MIG instance of a GPU (by GPU_I_ID) with its own latest metrics',
        params: migParams,
        querystring: noQuerySchema,
        response: { 200: migInstanceSchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const { clusterId, hostId, gpuId, instanceId } = request.params;
      const gpu = await ctx.reader.getGpu(clusterId, hostId, gpuId);
      if (!gpu) return throwGpuNotFound(ctx, clusterId, hostId, gpuId);
      const instance = gpu.migInstances.find((m) => m.instance === instanceId);
      if (!instance) throw migNotFound(instanceId, gpuId, hostId);
      return migInstanceView(instance);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId/gpus/:gpuId/mig/:instanceId/telemetry',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Samples of one MIG instance only (raw or rollups, see resolution), newest first by default',
        params: migParams,
        querystring: telemetryQuerySchema,
        response: { 200: telemetryAnyResponseSchema, ...errorResponses(400, 404, 422) },
      },
    },
    async (request, reply) => {
      const { clusterId, hostId, gpuId, instanceId } = request.params;
      const query = prepareTelemetryQuery(request.query);
      const store = requestStore(ctx);
      const gpu = await resolveHostGpu(ctx, store, clusterId, hostId, gpuId);
      if (!gpu) return throwGpuNotFound(ctx, clusterId, hostId, gpuId);
      const selector = { clusterId: gpu.clusterId, hostname: gpu.hostname, gpuId: gpu.gpuId };
      const page = await query.run(store, gpu, selector, instanceId);
      // Stored samples may outlive the live record; an instance neither lists is unknown.
      if (page.count === 0 && !(await ctx.reader.getMigInstance(clusterId, hostId, gpu.gpuId, instanceId)))
        throw migNotFound(instanceId, gpuId, hostId);
      return sendTelemetryPage(reply, page);
    },
  );
};

/** Throw the 404 of a GPU that is not found: its cluster's, its host's, or its own. */
async function throwGpuNotFound(
  ctx: ApiContext,
  clusterId: string,
  hostId: string,
  gpuId: string,
): Promise<never> {
  if (!(await ctx.reader.getHost(clusterId, hostId))) return throwHostNotFound(ctx, clusterId, hostId);
  throw notFound(`GPU '${gpuId}' not found on host '${hostId}' in cluster '${clusterId}'`);
}

function migNotFound(instanceId: string, gpuId: string, hostId: string): Error {
  return notFound(`MIG instance '${instanceId}' not found on GPU '${gpuId}' of host '${hostId}'`);
}

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
