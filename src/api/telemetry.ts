/**
 * The telemetry query the telemetry routes share: validate the query string (time range, metric
 * list, limit, order, resolution, format), ask the sample store for one more sample than `limit`
 * to learn whether more match (told to clients in the `x-has-more` header), and shape the page as
 * items or in the compact form. The resolution (`auto` decided here, once) is reported back for
 * the `x-resolution` header.
 */
import type { FastifyReply } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import { hasCode } from '../errors.js';
import {
  chooseResolution,
  countSelectedSamples,
  type GpuSelector,
  type SelectedSeries,
  type Resolution,
  type SampleStore,
  type StoredGpu,
} from '../ports/sample-store.js';
import { parseMetricList, parseResolution, parseTimeRange, type TimeRange } from './params.js';
import { RESOLUTION_HEADER, type telemetryQuerySchema } from './schemas.js';
import { telemetryCompactJson, telemetryCompactSeriesJson, telemetryItemsJson } from './telemetry-json.js';

/**
 * Query string of the telemetry routes, after schema validation and defaults (from the schema:
 * `limit`, `order` and `resolution` have defaults, so they are always there).
 */
export type TelemetryQuerystring = FromSchema<typeof telemetryQuerySchema>;

/** Response header telling clients whether more samples matched than `limit` returned. */
export const HAS_MORE_HEADER = 'x-has-more';

/** Result of a telemetry query: one page of samples, whether more matched, and the resolution read. */
export interface TelemetryPage {
  /**
   * The page as the routes' JSON body: an array of `TelemetryItemView`, or with `format=compact` a
   * `TelemetryCompactView` (telemetry-json.ts).
   */
  json: string;
  /** Items on the page. */
  count: number;
  hasMore: boolean;
  resolution: Resolution;
}

/** A checked telemetry query, ready to run for one GPU (its own series, or one MIG instance's). */
export interface PreparedTelemetryQuery {
  /** Run it for `gpu` (the compact form's `gpu`), whose series `selector` picks. */
  run(
    store: SampleStore,
    gpu: StoredGpu,
    selector: GpuSelector,
    migInstance?: string,
  ): Promise<TelemetryPage>;
}

/**
 * Check the query (throws BAD_REQUEST naming the parameter) and return it ready to run.
 * Call before any lookup that could 404 so bad parameters are reported first.
 */
export function prepareTelemetryQuery(query: TelemetryQuerystring): PreparedTelemetryQuery {
  const range = parseTimeRange(query.start_time, query.end_time);
  const metrics = parseMetricList(query.metric);
  const { limit, order, format } = query;
  const resolution = chooseResolution({ ...range, resolution: parseResolution(query.resolution) });
  return {
    run: async (store, gpu, selector, migInstance) => {
      if (format === 'compact' && resolution === 'raw' && 'gpuId' in selector) {
        const whole = await wholeSeries(store, selector, range, metrics, limit, migInstance);
        if (whole) {
          const json = telemetryCompactSeriesJson(whole, gpu);
          return { json, count: countSelectedSamples(whole), hasMore: false, resolution };
        }
      }
      const samples = await store.querySamples({
        gpu: selector,
        ...(migInstance !== undefined ? { migInstance } : {}),
        ...range,
        ...(metrics ? { metrics } : {}),
        limit: limit + 1,
        order,
        resolution,
      });
      const page = samples.slice(0, limit);
      return {
        json: format === 'compact' ? telemetryCompactJson(page, gpu, resolution) : telemetryItemsJson(page),
        count: page.length,
        hasMore: samples.length > limit,
        resolution,
      };
    },
  };
}

/** Send a page: its headers, and its body, which is JSON already (the response schema documents it). */
export function sendTelemetryPage(reply: FastifyReply, page: TelemetryPage): FastifyReply {
  return reply
    .header(HAS_MORE_HEADER, String(page.hasMore))
    .header(RESOLUTION_HEADER, page.resolution)
    .type('application/json; charset=utf-8')
    .send(page.json);
}

/**
 * A compact raw page whose window holds at most `limit` samples, read as whole series
 * (`selectSeries`, one text per query instead of a row per sample: docs/performance.md, "Series
 * reads as one text"); undefined when the window has more, or no bounds, and the page must be cut
 * in time order by the general path. The series are the ones that path reads: the GPU's own (no
 * `GPU_I_ID` label, or an empty one), or one MIG instance's.
 */
async function wholeSeries(
  store: SampleStore,
  gpu: { clusterId: string; hostname: string; gpuId: string },
  range: TimeRange,
  metrics: string[] | undefined,
  limit: number,
  migInstance: string | undefined,
): Promise<SelectedSeries[] | undefined> {
  if (range.startMs === undefined || range.endMs === undefined) return undefined;
  try {
    return await store.selectSeries({
      filter: {
        clusterId: gpu.clusterId,
        hostname: gpu.hostname,
        gpuId: gpu.gpuId,
        ...(metrics ? { metrics } : {}),
        labels: { GPU_I_ID: migInstance ?? '' },
      },
      startMs: range.startMs,
      endMs: range.endMs,
      maxSamples: limit,
    });
  } catch (error) {
    if (hasCode(error, 'READ_BUDGET_EXCEEDED')) return undefined;
    throw error;
  }
}
