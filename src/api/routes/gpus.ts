/**
 * The take-home's flat GPU API, kept for existing clients:
 *   GET /api/v1/gpus                   every GPU across clusters (hierarchy and store), one entry
 *                                      per UUID and host
 *   GET /api/v1/gpus/{id}/telemetry    samples of one GPU named by UUID
 * A bare index such as "0" names a different GPU on every host, so it is refused with
 * AMBIGUOUS_GPU_ID and a pointer to the hierarchical route. A UUID reported on several hosts is
 * refused with 409 AMBIGUOUS_UUID listing the per-host routes: their telemetry is never mixed.
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import { NexusError } from '../../errors.js';
import { naturalCompare } from '../../hierarchy/reader.js';
import type { StoredGpu } from '../../ports/sample-store.js';
import { requestStore, type ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import { ambiguousUuid, uuidPlaces } from '../gpu-identity.js';
import {
  errorResponses,
  gpuSummarySchema,
  gpuUuidParams,
  noQuerySchema,
  telemetryAnyResponseSchema,
  telemetryQuerySchema,
} from '../schemas.js';
import { prepareTelemetryQuery, sendTelemetryPage } from '../telemetry.js';
import { gpuSummaryView } from '../views.js';

/**
 * Every GPU the hierarchy or the store knows, one per UUID and host (hierarchy first), in
 * cluster/host/index order. A UUID reported on two hosts is listed once per host.
 */
async function allGpus(ctx: ApiContext): Promise<StoredGpu[]> {
  const [live, stored] = await Promise.all([ctx.reader.listAllGpus(), requestStore(ctx).listGpus()]);
  const byUuid = new Map<string, StoredGpu>();
  for (const g of [...live, ...stored]) {
    const key = `${g.uuid.toLowerCase()}\u0000${g.clusterId}\u0000${g.hostname}`;
    if (!byUuid.has(key)) {
      byUuid.set(key, {
        clusterId: g.clusterId,
        hostname: g.hostname,
        gpuId: g.gpuId,
        uuid: g.uuid,
        device: g.device,
        modelName: g.modelName,
      });
    }
  }
  return [...byUuid.values()].sort(
    (a, b) =>
      naturalCompare(a.clusterId, b.clusterId) ||
      naturalCompare(a.hostname, b.hostname) ||
      naturalCompare(a.gpuId, b.gpuId),
  );
}

/** Routes of the flat GPU API. */
export const gpuRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/api/v1/gpus',
    {
      schema: {
        tags: ['gpus'],
        summary: 'Every GPU with telemetry, across clusters',
        querystring: noQuerySchema,
        response: {
          200: { type: 'array', items: gpuSummarySchema },
          ...errorResponses(400),
        },
      },
    },
    async () => (await allGpus(ctx)).map(gpuSummaryView),
  );

  api.get(
    '/api/v1/gpus/:id/telemetry',
    {
      schema: {
        tags: ['telemetry'],
        summary: 'Samples of one GPU by UUID (raw or rollups, see resolution), newest first by default',
        params: gpuUuidParams,
        querystring: telemetryQuerySchema,
        response: { 200: telemetryAnyResponseSchema, ...errorResponses(400, 404, 409, 422) },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      if (/^\d+$/.test(id)) {
        throw new NexusError(
          'AMBIGUOUS_GPU_ID',
          `GPU id '${id}' is an index within a host and names a different GPU on every host. ` +
            `Use the GPU's UUID here, or GET /api/v1/clusters/{clusterId}/hosts/{hostId}/gpus/${id}/telemetry.`,
          { details: { parameter: 'id' } },
        );
      }
      const query = prepareTelemetryQuery(request.query);
      const store = requestStore(ctx);
      // Every host the UUID is reported on, live or stored: one host, or a 409 (never a mix).
      const [live, stored] = await Promise.all([ctx.reader.listAllGpus(), store.listGpus()]);
      const places = uuidPlaces(id, live, stored);
      const gpu = places[0];
      if (!gpu) throw notFound(`GPU '${id}' not found`);
      if (places.length > 1) throw ambiguousUuid(id, places, 'id', 'rest');
      // The place is one of the records listed: its device and model name the compact answer's GPU.
      const record = [...live, ...stored].find((g) => g === gpu);
      if (!record) throw notFound(`GPU '${id}' not found`);
      const page = await query.run(store, record, { uuid: gpu.uuid });
      return sendTelemetryPage(reply, page);
    },
  );
};
