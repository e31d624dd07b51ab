/**
 * Cluster and host routes over the live hierarchy:
 *   GET /api/v1/clusters
 *   GET /api/v1/clusters/{clusterId}
 *   GET /api/v1/clusters/{clusterId}/hosts
 *   GET /api/v1/clusters/{clusterId}/hosts/{hostId}
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync } from 'fastify';
import type { ApiContext } from '../context.js';
import { notFound } from '../errors.js';
import {
  clusterParams,
  clusterSchema,
  errorResponses,
  hostParams,
  hostSchema,
  noQuerySchema,
} from '../schemas.js';
import { clusterView, hostView } from '../views.js';

/** Throw the right 404 for a host lookup that found nothing: unknown cluster, or unknown host. */
export async function throwHostNotFound(ctx: ApiContext, clusterId: string, hostId: string): Promise<never> {
  if (!(await ctx.reader.getCluster(clusterId))) throw notFound(`Cluster '${clusterId}' not found`);
  throw notFound(`Host '${hostId}' not found in cluster '${clusterId}'`);
}

/** Routes for clusters and their hosts. */
export const clusterRoutes: FastifyPluginAsync<ApiContext> = async (app, ctx) => {
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  api.get(
    '/api/v1/clusters',
    {
      schema: {
        tags: ['clusters'],
        summary: 'List clusters with host and GPU totals',
        querystring: noQuerySchema,
        response: {
          200: { type: 'array', items: clusterSchema },
          ...errorResponses(400),
        },
      },
    },
    async () => (await ctx.reader.listClusters()).map(clusterView),
  );

  api.get(
    '/api/v1/clusters/:clusterId',
    {
      schema: {
        tags: ['clusters'],
        summary: 'One cluster with host and GPU totals',
        params: clusterParams,
        querystring: noQuerySchema,
        response: { 200: clusterSchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const { clusterId } = request.params;
      const cluster = await ctx.reader.getCluster(clusterId);
      if (!cluster) throw notFound(`Cluster '${clusterId}' not found`);
      return clusterView(cluster);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts',
    {
      schema: {
        tags: ['clusters'],
        summary: 'Hosts of a cluster',
        params: clusterParams,
        querystring: noQuerySchema,
        response: {
          200: { type: 'array', items: hostSchema },
          ...errorResponses(400, 404),
        },
      },
    },
    async (request) => {
      const { clusterId } = request.params;
      const hosts = await ctx.reader.listHosts(clusterId);
      if (!hosts) throw notFound(`Cluster '${clusterId}' not found`);
      return hosts.map(hostView);
    },
  );

  api.get(
    '/api/v1/clusters/:clusterId/hosts/:hostId',
    {
      schema: {
        tags: ['clusters'],
        summary: 'One host',
        params: hostParams,
        querystring: noQuerySchema,
        response: { 200: hostSchema, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const { clusterId, hostId } = request.params;
      const host = await ctx.reader.getHost(clusterId, hostId);
      if (!host) return throwHostNotFound(ctx, clusterId, hostId);
      return hostView(host);
    },
  );
};
