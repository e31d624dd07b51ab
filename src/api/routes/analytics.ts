/**
 * GET /api/v1/analytics/{attribution,idle,outliers}: workload attribution (GPU-hours, energy, cost),
 * idle-but-allocated GPUs and peer outliers over a time range (src/analytics/, docs/analytics.md),
 * as JSON or, with `Accept: text/csv`, as CSV. Each request computes inside one read slot of the
 * app's limiter, within READ_TIMEOUT.
 */
import type { JsonSchemaToTsProvider } from '@fastify/type-provider-json-schema-to-ts';
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { attribution, parseGroupBy } from '../../analytics/attribution.js';
import { toCsv } from '../../analytics/csv.js';
import { idleAllocated } from '../../analytics/idle.js';
import { peerOutliers } from '../../analytics/outliers.js';
import { parsePrices, type PriceTable } from '../../analytics/prices.js';
import { analyticsRange, durationParam } from '../../analytics/requests.js';
import type { ApiContext } from '../context.js';
import {
  attributionQuerySchema,
  attributionResponseSchema,
  attributionRowSchema,
  errorResponses,
  idleQuerySchema,
  idleResponseSchema,
  idleRowSchema,
  outlierQuerySchema,
  outlierResponseSchema,
  outlierRowSchema,
} from '../schemas.js';

/** Options of {@link analyticsRoutes}. */
export interface AnalyticsRouteOptions {
  ctx: ApiContext;
  /** Prices per GPU-hour (ANALYTICS_PRICES); default `default=1`. */
  prices?: PriceTable;
}

function range(q: { start?: string; end?: string; resolution?: string; interval?: string }, nowMs: number) {
  return analyticsRange(
    {
      ...(q.start === undefined ? {} : { startMs: Date.parse(q.start) }),
      ...(q.end === undefined ? {} : { endMs: Date.parse(q.end) }),
      ...(q.resolution === undefined ? {} : { resolution: q.resolution }),
      ...(q.interval === undefined ? {} : { interval: q.interval }),
    },
    nowMs,
  );
}

const iso = (ms: number): string => new Date(ms).toISOString();

function wantsCsv(request: FastifyRequest): boolean {
  return /\btext\/csv\b/i.test(request.headers.accept ?? '');
}

function sendCsv(
  reply: FastifyReply,
  schema: { required: readonly string[] },
  rows: Record<string, unknown>[],
) {
  return reply.type('text/csv; charset=utf-8').send(toCsv(schema.required, rows));
}

const csvNote = ' With `Accept: text/csv` the rows come as CSV (header = the row fields).';

/** The analytics routes. */
export const analyticsRoutes: FastifyPluginAsync<AnalyticsRouteOptions> = async (app, options) => {
  const { ctx } = options;
  const prices = options.prices ?? parsePrices('default=1');
  const now = ctx.deps.now ?? Date.now;
  const api = app.withTypeProvider<JsonSchemaToTsProvider>();
  const compute = <T>(work: () => Promise<T>): Promise<T> => ctx.reads.run(ctx.reads.budget(), work);

  api.get(
    '/api/v1/analytics/attribution',
    {
      schema: {
        tags: ['analytics'],
        summary: 'GPU-hours allocated and busy, energy, utilization, memory and cost per group',
        description: `Workloads only (series with a namespace, pod or container). docs/analytics.md has the arithmetic.${csvNote}`,
        querystring: attributionQuerySchema,
        response: { 200: attributionResponseSchema, ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      const r = range(request.query, now());
      const by = parseGroupBy(request.query.by);
      const rows = (await compute(() => attribution(ctx.deps.store, { ...r, by, prices }))).map((a) => ({
        key: a.key,
        gpus: a.gpus,
        gpu_hours_allocated: a.gpuHoursAllocated,
        gpu_hours_busy: a.gpuHoursBusy,
        energy_kwh: a.energyKwh,
        avg_utilization: a.avgUtilization,
        peak_utilization: a.peakUtilization,
        avg_memory_used_mib: a.avgMemoryUsedMiB,
        peak_memory_used_mib: a.peakMemoryUsedMiB,
        allocated_cost: a.allocatedCost,
        effective_cost: a.effectiveCost,
        waste_fraction: a.wasteFraction,
      }));
      if (wantsCsv(request)) return sendCsv(reply, attributionRowSchema, rows);
      return { start: iso(r.startMs), end: iso(r.endMs), resolution: r.mode, by, rows };
    },
  );

  api.get(
    '/api/v1/analytics/idle',
    {
      schema: {
        tags: ['analytics'],
        summary: 'GPUs held by a workload with utilization under a threshold for at least a duration',
        description: `Minute grain; wasted GPU-hours = samples x interval (MIG: x its fraction).${csvNote}`,
        querystring: idleQuerySchema,
        response: { 200: idleResponseSchema, ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      const r = range(request.query, now());
      const minDurationMs = durationParam('duration', request.query.duration);
      const rows = (
        await compute(() =>
          idleAllocated(ctx.deps.store, { ...r, thresholdPercent: request.query.threshold, minDurationMs }),
        )
      ).map((i) => ({
        namespace: i.namespace,
        pod: i.pod,
        container: i.container,
        hostname: i.hostname,
        gpu_id: i.gpuId,
        uuid: i.uuid,
        model: i.modelName,
        mig_instance: i.migInstance,
        start: iso(i.startMs),
        end: iso(i.endMs),
        idle_seconds: i.idleMs / 1000,
        gpu_hours_wasted: i.gpuHoursWasted,
        max_utilization: i.maxUtilization,
      }));
      if (wantsCsv(request)) return sendCsv(reply, idleRowSchema, rows);
      return { start: iso(r.startMs), end: iso(r.endMs), resolution: r.mode, rows };
    },
  );

  api.get(
    '/api/v1/analytics/outliers',
    {
      schema: {
        tags: ['analytics'],
        summary:
          'GPUs whose temperature, power or SM clock departs from their siblings (same host and model)',
        description: `Robust deviations (median/MAD) per minute after taking load out; see docs/analytics.md.${csvNote}`,
        querystring: outlierQuerySchema,
        response: { 200: outlierResponseSchema, ...errorResponses(400) },
      },
    },
    async (request, reply) => {
      const r = range(request.query, now());
      const minDurationMs = durationParam('duration', request.query.duration);
      const rows = (
        await compute(() => peerOutliers(ctx.deps.store, { ...r, k: request.query.k, minDurationMs }))
      ).map((o) => ({
        cluster_id: o.clusterId,
        hostname: o.hostname,
        gpu_id: o.gpuId,
        uuid: o.uuid,
        model: o.modelName,
        signal: o.signal,
        start: iso(o.startMs),
        end: iso(o.endMs),
        max_score: o.maxScore,
        mean_deviation: o.meanDeviation,
        peers: o.peers,
      }));
      if (wantsCsv(request)) return sendCsv(reply, outlierRowSchema, rows);
      return { start: iso(r.startMs), end: iso(r.endMs), resolution: r.mode, rows };
    },
  );
};
