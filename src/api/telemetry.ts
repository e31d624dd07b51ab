/**
 * The telemetry query both telemetry routes share: validate the query string (time range, metric
 * list, limit, order, resolution), ask the sample store for one more sample than `limit` to learn
 * whether more match (told to clients in the `x-has-more` header), and shape the items. The
 * resolution (`auto` decided here, once) is reported back for the `x-resolution` header.
 */
import {
  chooseResolution,
  type GpuSelector,
  type Resolution,
  type SampleAggregate,
  type SampleStore,
} from '../ports/sample-store.js';
import { parseMetricList, parseResolution, parseTimeRange } from './params.js';
import { DEFAULT_LIMIT } from './schemas.js';
import type { FastifyReply } from 'fastify';
import { RESOLUTION_HEADER } from './schemas.js';
import { telemetryItemsJson } from './telemetry-json.js';
import type { TelemetryItemView } from './views.js';

/** Query string of the telemetry routes, after schema validation and defaults. */
export interface TelemetryQuerystring {
  limit?: number;
  start_time?: string;
  end_time?: string;
  metric?: string[];
  order?: 'asc' | 'desc';
  resolution?: string;
}

/** Response header telling clients whether more samples matched than `limit` returned. */
export const HAS_MORE_HEADER = 'x-has-more';

/** A telemetry item; rollup buckets carry their aggregate. */
export type TelemetryItem = TelemetryItemView & { aggregate?: SampleAggregate };

/** Result of a telemetry query: one page of samples, whether more matched, and the resolution read. */
export interface TelemetryPage {
  /** The page as the routes' JSON body: an array of {@link TelemetryItem} (telemetry-json.ts). */
  json: string;
  /** Items on the page. */
  count: number;
  hasMore: boolean;
  resolution: Resolution;
}

/** A checked telemetry query, ready to run for one GPU. */
export interface PreparedTelemetryQuery {
  run(store: SampleStore, selector: GpuSelector): Promise<TelemetryPage>;
}

/**
 * Check the query (throws BAD_REQUEST naming the parameter) and return it ready to run.
 * Call before any lookup that could 404 so bad parameters are reported first.
 */
export function prepareTelemetryQuery(query: TelemetryQuerystring): PreparedTelemetryQuery {
  const range = parseTimeRange(query.start_time, query.end_time);
  const metrics = parseMetricList(query.metric);
  const limit = query.limit ?? DEFAULT_LIMIT;
  const order = query.order ?? 'desc';
  const resolution = chooseResolution({ ...range, resolution: parseResolution(query.resolution) });
  return {
    run: async (store, selector) => {
      const samples = await store.querySamples({
        gpu: selector,
        ...range,
        ...(metrics ? { metrics } : {}),
        limit: limit + 1,
        order,
        resolution,
      });
      const page = samples.slice(0, limit);
      return {
        json: telemetryItemsJson(page),
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
