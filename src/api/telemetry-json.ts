/**
 * The JSON bodies of the telemetry routes: the items, written directly, and the compact form
 * (`format=compact`, {@link telemetryCompactJson}). A page holds many samples of few series
 * (one GPU's metrics), and every item repeats its series' fields and labels: serialising those once
 * per series instead of once per item takes a 1,210-item page from about 12 ms (fast-json-stringify,
 * whose open `labels` object takes its slow path) to about 1 ms. The items are `TelemetryItemView`s,
 * the type views.ts derives from the telemetry response schema: the per-series fields are built as
 * parts of that type (so tsc checks their names and types) and serialised with `JSON.stringify`.
 * The output is exactly `JSON.stringify` of `telemetryItemView` of each sample, and it validates
 * against `telemetryResponseSchema` (test/api/telemetry-json.test.ts).
 */
import type { FromSchema } from 'json-schema-to-ts';
import type { SeriesKey } from '../domain/types.js';
import type { Resolution, SelectedSeries, StoredGpu, StoredSample } from '../ports/sample-store.js';
import { sameSeries } from '../storage/series.js';
import type { telemetryCompactResponseSchema } from './schemas.js';
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
  // Series by labels object (one series per object as the stores read them; more are compared
  // field by field), and the last timestamp's text (a page's samples come in time order, the
  // series of one instant together).
  const bySeries = new Map<Record<string, string>, { sample: StoredSample; json: SeriesJson }[]>();
  const parts: string[] = new Array<string>(samples.length);
  let lastMs = Number.NaN;
  let lastTime = '';
  for (let i = 0; i < samples.length; i++) {
    const s = samples[i]!;
    let candidates = bySeries.get(s.labels);
    if (!candidates) bySeries.set(s.labels, (candidates = []));
    let series: SeriesJson | undefined;
    for (const c of candidates) {
      if (sameSeries(c.sample, s)) {
        series = c.json;
        break;
      }
    }
    if (!series) candidates.push({ sample: s, json: (series = seriesJson(s)) });
    if (s.timestampMs !== lastMs) {
      lastMs = s.timestampMs;
      lastTime = rfc3339(lastMs);
    }
    let item = `{"timestamp":"${lastTime}",${series.head},"value":${num(s.value)},${series.tail}`;
    const a = s.aggregate;
    if (a) {
      item += `,"aggregate":{"min":${num(a.min)},"max":${num(a.max)},"avg":${num(a.avg)},"count":${num(a.count)},"last":${num(a.last)}}`;
    }
    parts[i] = `${item}}`;
  }
  return `[${parts.join(',')}]`;
}

/** Body of the telemetry routes with `format=compact` (the type the schema describes). */
export type TelemetryCompactView = FromSchema<typeof telemetryCompactResponseSchema>;
type CompactSeries = TelemetryCompactView['series'][number];
type CompactGpu = TelemetryCompactView['gpu'];

const compactGpu = (
  g: Pick<SeriesKey, 'clusterId' | 'hostname' | 'gpuId' | 'uuid' | 'device' | 'modelName'>,
): CompactGpu => ({
  cluster_id: g.clusterId,
  hostname: g.hostname,
  gpu_id: g.gpuId,
  uuid: g.uuid,
  device: g.device,
  model_name: g.modelName,
});

const sameGpu = (a: CompactGpu, b: CompactGpu): boolean =>
  a.cluster_id === b.cluster_id &&
  a.hostname === b.hostname &&
  a.gpu_id === b.gpu_id &&
  a.uuid === b.uuid &&
  a.device === b.device &&
  a.model_name === b.model_name;

/** A series' labels: labels_raw, with its container, pod and namespace when they are set. */
function compactLabels(s: SeriesKey): Record<string, string> {
  const labels = { ...s.labels };
  if (s.container !== '') labels.container = s.container;
  if (s.pod !== '') labels.pod = s.pod;
  if (s.namespace !== '') labels.namespace = s.namespace;
  return labels;
}

/** One series of the compact form, before its points, with the key it is sorted by. */
interface CompactEntry {
  sortKey: string;
  series: CompactSeries;
}

/** A series' entry: metric and labels, and its own `gpu` when it names another than `top`. */
function compactEntry(key: SeriesKey, top: CompactGpu): CompactEntry {
  const labels = compactLabels(key);
  const series: CompactSeries = { metric: key.metric, labels, t: [], v: [] };
  const own = compactGpu(key);
  if (!sameGpu(own, top)) series.gpu = own;
  return { sortKey: `${key.metric}\u0000${JSON.stringify(labels)}\u0000${JSON.stringify(own)}`, series };
}

/** The series of the compact form, sorted by metric, then labels, then GPU. */
const sortCompact = (entries: CompactEntry[]): CompactSeries[] =>
  entries.sort((a, b) => (a.sortKey < b.sortKey ? -1 : a.sortKey > b.sortKey ? 1 : 0)).map((e) => e.series);

/**
 * `samples` (one page of a telemetry query, in either order) in the compact form: `gpu` once (the
 * GPU the route resolved), then one entry per series (metric, GPU identity, container, pod,
 * namespace and labels), sorted by metric then labels, with times ascending and values beside
 * them; at a rollup resolution also min, max, count and last. A series whose samples name another
 * GPU than `gpu` (a device renamed, a UUID moved) carries its own `gpu`. Exactly the samples of
 * {@link telemetryItemsJson} for the same page.
 */
export function telemetryCompactJson(
  samples: readonly StoredSample[],
  gpu: StoredGpu,
  resolution: Resolution,
): string {
  const top = compactGpu(gpu);
  const rollup = resolution !== 'raw';
  const labelsText = new Map<Record<string, string>, string>();
  const bySeries = new Map<string, CompactEntry & { rows: StoredSample[] }>();
  for (const s of samples) {
    let text = labelsText.get(s.labels);
    if (text === undefined) labelsText.set(s.labels, (text = JSON.stringify(s.labels)));
    const key = `${seriesIdentity(s)}\u0000${text}`;
    let entry = bySeries.get(key);
    if (!entry) bySeries.set(key, (entry = { ...compactEntry(s, top), rows: [] }));
    entry.rows.push(s);
  }
  const series = sortCompact(
    [...bySeries.values()].map(({ sortKey, series, rows }) => {
      rows.sort((a, b) => a.timestampMs - b.timestampMs);
      series.t = rows.map((r) => r.timestampMs);
      series.v = rows.map((r) => r.value);
      if (rollup) {
        // Every rollup sample carries its bucket's aggregate; a raw-shaped one stands for itself.
        const agg = rows.map((r) => r.aggregate ?? { min: r.value, max: r.value, count: 1, last: r.value });
        series.min = agg.map((a) => a.min);
        series.max = agg.map((a) => a.max);
        series.count = agg.map((a) => a.count);
        series.last = agg.map((a) => a.last);
      }
      return { sortKey, series };
    }),
  );
  const body: TelemetryCompactView = { gpu: top, resolution, series };
  return JSON.stringify(body);
}

/**
 * Whole raw series (each with every sample of the query's window, times ascending) in the compact
 * form: the same body {@link telemetryCompactJson} writes for a page holding exactly their samples.
 */
export function telemetryCompactSeriesJson(selected: readonly SelectedSeries[], gpu: StoredGpu): string {
  const top = compactGpu(gpu);
  const series = sortCompact(
    selected.map(({ series: key, timestamps, values }) => {
      const entry = compactEntry(key, top);
      entry.series.t = timestamps;
      entry.series.v = values;
      return entry;
    }),
  );
  const body: TelemetryCompactView = { gpu: top, resolution: 'raw', series };
  return JSON.stringify(body);
}
