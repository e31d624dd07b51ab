/**
 * The JSON body of the telemetry routes, written directly. A page holds many samples of few series
 * (one GPU's metrics), and every item repeats its series' fields and labels: serialising those once
 * per series instead of once per item takes a 1,210-item page from about 12 ms (fast-json-stringify,
 * whose open `labels` object takes its slow path) to about 1 ms. The items are `TelemetryItemView`s,
 * the type views.ts derives from the telemetry response schema: the per-series fields are built as
 * parts of that type (so tsc checks their names and types) and serialised with `JSON.stringify`.
 * The output is exactly `JSON.stringify` of `telemetryItemView` of each sample, and it validates
 * against `telemetryResponseSchema` (test/api/telemetry-json.test.ts).
 */
import type { StoredSample } from '../ports/sample-store.js';
import { rfc3339, type TelemetryItemView } from './views.js';

/** The fields of an item that belong to its series, in item order around `value`. */
type SeriesHead = Pick<TelemetryItemView, 'metric_name'>;
type SeriesTail = Omit<TelemetryItemView, 'timestamp' | 'metric_name' | 'value' | 'aggregate'>;

/**
 * The fields the text below writes per item, and those of an aggregate: these fail to compile
 * when the schema gains, drops or renames one, until the writer follows. (A new field lands in
 * `SeriesTail`, whose literal in `seriesJson` then fails to compile.)
 */
const _perItemFields: Record<Exclude<keyof TelemetryItemView, keyof SeriesHead | keyof SeriesTail>, true> = {
  timestamp: true,
  value: true,
  aggregate: true,
};
const _aggregateFields: Record<keyof NonNullable<TelemetryItemView['aggregate']>, true> = {
  min: true,
  max: true,
  avg: true,
  count: true,
  last: true,
};

/** `"metric_name":..` and the fields after `value`, serialised once per series. */
interface SeriesJson {
  head: string;
  tail: string;
}

/**
 * Every field of a sample that belongs to its series. Samples of one series share their labels
 * object, so the text is only the second-level key.
 */
const seriesIdentity = (s: StoredSample): string =>
  `${s.metric}\u0000${s.gpuId}\u0000${s.uuid}\u0000${s.hostname}\u0000${s.clusterId}\u0000${s.device}\u0000${s.modelName}\u0000${s.container}\u0000${s.pod}\u0000${s.namespace}`;

/** The members of a JSON object, without its braces. */
const members = (fields: object): string => JSON.stringify(fields).slice(1, -1);

function seriesJson(s: StoredSample): SeriesJson {
  const head: SeriesHead = { metric_name: s.metric };
  const tail: SeriesTail = {
    gpu_id: s.gpuId,
    uuid: s.uuid,
    hostname: s.hostname,
    cluster_id: s.clusterId,
    device: s.device,
    model_name: s.modelName,
    container: s.container,
    pod: s.pod,
    namespace: s.namespace,
    labels: s.labels,
  };
  return { head: members(head), tail: members(tail) };
}

/** A finite number as JSON; anything else (never stored: ingest refuses it) as null. */
const num = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

/** The telemetry items of `samples` as a JSON array of `TelemetryItemView` (see the module comment). */
export function telemetryItemsJson(samples: readonly StoredSample[]): string {
  const bySeries = new Map<Record<string, string>, Map<string, SeriesJson>>();
  const parts: string[] = new Array<string>(samples.length);
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    let byIdentity = bySeries.get(s.labels);
    if (!byIdentity) bySeries.set(s.labels, (byIdentity = new Map()));
    const identity = seriesIdentity(s);
    let series = byIdentity.get(identity);
    if (!series) byIdentity.set(identity, (series = seriesJson(s)));
    let item = `{"timestamp":"${rfc3339(s.timestampMs)}",${series.head},"value":${num(s.value)},${series.tail}`;
    const a = s.aggregate;
    if (a) {
      item += `,"aggregate":{"min":${num(a.min)},"max":${num(a.max)},"avg":${num(a.avg)},"count":${num(a.count)},"last":${num(a.last)}}`;
    }
    parts[i] = `${item}}`;
  }
  return `[${parts.join(',')}]`;
}
