// The API's TypeScript types come from its JSON schemas (src/api/schemas.ts): the view types are
// derived with FromSchema, and route handlers, under the JSON-schema type provider, are checked
// against their route's schemas. This file is mostly for `tsc --noEmit` (npm run typecheck): each
// `@ts-expect-error` fails the build if the error it expects goes away, i.e. if a handler or view
// could again return a shape its schema does not describe.
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import Fastify from 'fastify';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { ErrorBody as HandWrittenErrorBody } from '../../src/api/errors.js';
import {
  type ErrorBody,
  clusterParams,
  clusterSchema,
  errorResponses,
  gpuParams,
  noQuerySchema,
  telemetryQuerySchema,
  telemetryResponseSchema,
} from '../../src/api/schemas.js';
import type { TelemetryQuerystring } from '../../src/api/telemetry.js';
import type { ClusterView, DeadLetterView, GpuView, TelemetryItemView } from '../../src/api/views.js';

const metadata = { total_hosts: 1, total_gpus: 8, active_hosts: 1, active_gpus: 8 };
const cluster: ClusterView = { cluster_id: 'c', cluster_name: 'C', region: 'r', metadata };

/** Routes that must (and must not) compile; registered on an app that is never started. */
function routes() {
  const api = Fastify().withTypeProvider<JsonSchemaToTsProvider>();
  const schema = {
    params: clusterParams,
    querystring: noQuerySchema,
    response: { 200: clusterSchema, ...errorResponses(404) },
  } as const;

  api.get('/ok/:clusterId', { schema }, async (request) => {
    expectTypeOf(request.params.clusterId).toEqualTypeOf<string>();
    return cluster;
  });
  // A handler may return the error body of a declared error status.
  api.get('/error/:clusterId', { schema }, async () => ({ error: { code: 'NOT_FOUND', message: 'no' } }));

  // @ts-expect-error -- the handler misses `region`, which clusterSchema requires
  api.get('/missing/:clusterId', { schema }, async () => ({ cluster_id: 'c', cluster_name: 'C', metadata }));
  // @ts-expect-error -- `region` is a string in clusterSchema
  api.get('/mistyped/:clusterId', { schema }, async () => ({ ...cluster, region: 1 }));
  // @ts-expect-error -- nested too: `active_gpus` is required in the cluster metadata
  api.get('/nested/:clusterId', { schema }, async () => ({
    ...cluster,
    metadata: { ...metadata, active_gpus: undefined },
  }));
  api.get('/extra/:clusterId', { schema }, async (_request, reply) =>
    // @ts-expect-error -- clusterSchema has no `extra` (the serializer would drop it)
    reply.code(200).send({ ...cluster, extra: 1 }),
  );

  api.get(
    '/telemetry/:clusterId/:hostId/:gpuId',
    {
      schema: {
        params: gpuParams,
        querystring: telemetryQuerySchema,
        response: { 200: telemetryResponseSchema },
      },
    },
    async (request) => {
      // Defaults come from the schema: limit, order and resolution are always there.
      expectTypeOf(request.query.limit).toEqualTypeOf<number>();
      expectTypeOf(request.query.order).toEqualTypeOf<'asc' | 'desc'>();
      expectTypeOf(request.query.metric).toEqualTypeOf<string[] | undefined>();
      expectTypeOf(request.params.gpuId).toEqualTypeOf<string>();
      // @ts-expect-error -- telemetryQuerySchema allows no other parameter
      void request.query.other;
      return [];
    },
  );
  return api;
}

/** Views are the schema-derived types: closed objects, required fields required. */
function views() {
  // @ts-expect-error -- clusterSchema has no `extra`
  const extra: ClusterView = { ...cluster, extra: 1 };
  // @ts-expect-error -- a dead letter needs every field of deadLetterSchema
  const partial: DeadLetterView = { id: 1, source: 's', line: 1, raw: '', reason: 'r', detail: '' };
  return [extra, partial];
}

describe('API types derived from the schemas', () => {
  it('has exactly the schema fields, no index signature', () => {
    expectTypeOf<keyof ClusterView>().toEqualTypeOf<'cluster_id' | 'cluster_name' | 'region' | 'metadata'>();
    expectTypeOf<ClusterView['metadata']>().toEqualTypeOf<typeof metadata>();
    expectTypeOf<GpuView['metrics']>().toEqualTypeOf<{
      [field: string]: { value: number; timestamp: string };
    }>();
    expectTypeOf<TelemetryItemView['labels']>().toEqualTypeOf<{ [name: string]: string }>();
    expectTypeOf<TelemetryItemView['aggregate']>().toEqualTypeOf<
      { min: number; max: number; avg: number; count: number; last: number } | undefined
    >();
    expectTypeOf<keyof TelemetryItemView>().toEqualTypeOf<
      | 'timestamp'
      | 'metric_name'
      | 'value'
      | 'gpu_id'
      | 'uuid'
      | 'hostname'
      | 'cluster_id'
      | 'device'
      | 'model_name'
      | 'container'
      | 'pod'
      | 'namespace'
      | 'labels'
      | 'aggregate'
    >();
    // errors.ts still writes its ErrorBody by hand: it must stay the schema's error body.
    expectTypeOf<HandWrittenErrorBody>().toEqualTypeOf<ErrorBody>();
    expectTypeOf<TelemetryQuerystring['resolution']>().toEqualTypeOf<'raw' | '1m' | '1h' | 'auto'>();
  });

  it('type-checks route handlers against their schemas (see tsc)', async () => {
    const app = routes();
    try {
      const r = await app.inject({ method: 'GET', url: '/ok/c1' });
      expect(r.json()).toEqual(cluster);
      expect(app.hasRoute({ method: 'GET', url: '/missing/:clusterId' })).toBe(true);
    } finally {
      await app.close();
    }
    expect(views()).toHaveLength(2);
  });
});
