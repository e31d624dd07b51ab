/**
 * GET /federate?match[]=<selector>: Prometheus federation. For every series matching any `match[]`
 * (at least one required) that belongs to an active GPU of the live hierarchy (a MIG instance's
 * series: an active MIG instance), its newest stored sample with its own timestamp, in text
 * exposition format 0.0.4 with `# TYPE` lines, dcgm-exporter metric names and labels plus
 * `cluster` (labels-view.ts). Prometheus scrapes it with `honor_labels: true` (docs/promql.md).
 * Errors are plain text, as Prometheus answers them.
 *
 * Prometheus itself returns the newest sample within its lookback; stored data may be older than
 * any lookback (a replayed CSV), so "current" is the hierarchy's notion instead: active GPUs.
 * Selectors with a metric name matcher also match the health series `nexus_gpu_health` and
 * `nexus_gpu_health_reason` of every GPU the hierarchy lists (src/health/series.ts), stamped with
 * the time of the request.
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { healthSeries } from '../../health/series.js';
import { migInstanceOf } from '../../hierarchy/records.js';
import type { StoredSeries } from '../../ports/sample-store.js';
import { EXPOSITION_CONTENT_TYPE, renderFederation, type FederatedSample } from '../../promql/federate.js';
import { ERROR_STATUS } from '../../promql/format.js';
import { labelsKey, matches } from '../../promql/labels.js';
import { selectWithLabels } from '../../promql/store-queryable.js';
import { ReadBudget } from '../read-limiter.js';
import type { ApiContext } from '../context.js';
import { EARLIEST_MS, LATEST_MS, matchParams, requestParams, toPromError } from './prometheus.js';

/** Options of {@link federateRoutes}. */
export interface FederateRoutesOptions {
  ctx: ApiContext;
  /** Time budget of one federation request, ms (default 2 min, PROMQL_TIMEOUT). */
  timeoutMs?: number;
}

/** Key of a GPU (or one of its MIG instances) in the hierarchy and in the store's series columns. */
function gpuKey(
  g: { clusterId: string; hostname: string; gpuId: string; uuid: string },
  migInstance?: string,
): string {
  return JSON.stringify([g.clusterId, g.hostname, g.gpuId, g.uuid, migInstance ?? null]);
}

/** Register GET /federate. */
export const federateRoutes: FastifyPluginAsync<FederateRoutesOptions> = async (app, options) => {
  const { ctx } = options;
  const timeoutMs = options.timeoutMs ?? 120_000;

  app.get('/federate', { schema: { hide: true } }, async (request, reply): Promise<FastifyReply> => {
    try {
      const selectors = matchParams(requestParams(request));
      if (selectors.length === 0) {
        return reply.code(400).type('text/plain; charset=utf-8').send('no match[] parameter provided\n');
      }
      const active = new Set<string>();
      const gpus = await ctx.reader.listAllGpus();
      for (const gpu of gpus) {
        if (gpu.active) active.add(gpuKey(gpu));
        for (const m of gpu.migInstances) if (m.active) active.add(gpuKey(gpu, m.instance));
      }
      const budget = new ReadBudget({ timeoutMs, maxRows: 0 });
      const signal = AbortSignal.timeout(timeoutMs);
      // A MIG instance's series follow the instance's activity, a GPU's own series the GPU's.
      const keep = (series: StoredSeries): boolean => active.has(gpuKey(series, migInstanceOf(series)));
      // Series sharing one label view keep the newest sample of any of them.
      const newest = new Map<string, FederatedSample>();
      if (active.size > 0) {
        for (const matchers of selectors) {
          const found = await selectWithLabels(
            ctx.deps.store,
            { matchers, startMs: EARLIEST_MS, endMs: LATEST_MS, latestOnly: true, keep },
            { run: (read) => ctx.reads.run(budget, read) },
            signal,
          );
          for (const s of found) {
            const key = labelsKey(s.labels);
            const t = s.timestamps[0]!;
            const seen = newest.get(key);
            if (seen === undefined || t > seen.timestampMs) {
              newest.set(key, { labels: s.labels, timestampMs: t, value: s.values[0]! });
            }
          }
        }
      }
      // Health series of every GPU the hierarchy lists (a stale or gone GPU is what they are about),
      // for selectors with a metric name matcher (a bare `{Hostname="h"}` keeps meaning DCGM series).
      const named = selectors.filter((ms) => ms.some((m) => m.name === '__name__'));
      const nowMs = Date.now();
      for (const gpu of named.length > 0 ? gpus : []) {
        for (const h of healthSeries(gpu)) {
          if (named.some((ms) => ms.every((m) => matches(m, h.labels))))
            newest.set(labelsKey(h.labels), { labels: h.labels, timestampMs: nowMs, value: h.value });
        }
      }
      return reply.type(EXPOSITION_CONTENT_TYPE).send(renderFederation([...newest.values()]));
    } catch (error) {
      const { type, message } = toPromError(error);
      if (type === 'internal') request.log.error({ err: error }, 'federation failed');
      return reply
        .code(ERROR_STATUS[type])
        .type('text/plain; charset=utf-8')
        .send(`${type === 'internal' ? 'internal error' : message}\n`);
    }
  });
};
