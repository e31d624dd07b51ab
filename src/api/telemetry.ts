/**
 * The telemetry query the telemetry routes share: validate the query string (time range, metric
 * list, limit, order, resolution, format), ask the sample store for one more sample than `limit`
 * to learn whether more match (told to clients in the `x-has-more` header), and shape the page as
 * items or in the compact form. The resolution (`auto` decided here, once) is reported back for
 * the `x-resolution` header.
 */
import type { FastifyReply } from 'fastify';
import type { FromSchema } from 'json-schema-to-ts';
import {
  chooseResolution,
  type GpuSelector,
  type Resolution,
  type SampleStore,
  type StoredGpu,
} from '../ports/sample-store.js';
import { parseMetricList, parseResolution, parseTimeRange } from './params.js';
import { RESOLUTION_HEADER, type telemetryQuerySchema } from './schemas.js';
import { telemetryCompactJson, telemetryItemsJson } from './telemetry-json.js';

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
