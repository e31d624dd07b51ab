/**
 * A PromQL {@link Queryable} over the sample store: label matchers become a series filter the store
 * pushes into SQL (metric name equality, a literal alternation or prefix regex on `__name__`,
 * equality on the indexed GPU and workload columns) plus an exact in-memory check of every matcher
 * on each candidate series' label view (labels-view.ts). Stored series that share one label view
 * (the same GPU and metric stored under two raw label sets) are merged into one series, as
 * Prometheus would hold them.
 */
import { hasCode } from '../errors.js';
import type { SampleStore, SelectedSeries, SeriesFilter, StoredSeries } from '../ports/sample-store.js';
import { TOO_MANY_SAMPLES } from './evaluator.js';
import { COLUMN_LABELS, seriesLabels } from './labels-view.js';
import { labelsKey } from './labels.js';
import { compileMatcherRegex } from './regex.js';
import {
  PromQLError,
  type LabelMatcher,
  type Labels,
  type Queryable,
  type SeriesData,
  type SeriesSelection,
} from './types.js';

/** Runs one store read (e.g. through the API's read limiter). */
export type ReadRunner = <T>(read: () => Promise<T>) => Promise<T>;

/** Options of {@link StoreQueryable}. */
export interface StoreQueryableOptions {
  /** Most samples one `select` may load (Prometheus' --query.max-samples); default no bound. */
  maxSamples?: number;
  /** Wraps every store read (default: call it directly). */
  run?: ReadRunner;
}

export { TOO_MANY_SAMPLES };

/** A label matcher compiled to a predicate on a label value (`''` when the label is absent). */
export type ValueTest = (value: string) => boolean;

/**
 * Compile one matcher; regexes are Go RE2 ones, fully anchored, translated by regex.ts.
 * @throws PromQLError `bad_data` when the regex does not compile
 */
export function compileMatcher(m: LabelMatcher): ValueTest {
  if (m.type === '=') return (v) => v === m.value;
  if (m.type === '!=') return (v) => v !== m.value;
  const re = compileMatcherRegex(m.value);
  return m.type === '=~' ? (v) => re.test(v) : (v) => !re.test(v);
}

/** A regex that is only literal metric names joined by `|` (`A|B`), as those names. */
const LITERAL_ALTERNATION = /^[A-Za-z_:][A-Za-z0-9_:]*(\|[A-Za-z_:][A-Za-z0-9_:]*)*$/;
/** A regex that is a literal prefix followed by `.*` (`DCGM_FI_DEV_.*`). */
const LITERAL_PREFIX = /^([A-Za-z_:][A-Za-z0-9_:]*)\.\*$/;

/**
 * The part of `matchers` the store can apply in SQL (exact: the in-memory check still runs on
 * every candidate), or `undefined` when the matchers contradict each other and match nothing.
 */
export function pushdownFilter(matchers: readonly LabelMatcher[]): SeriesFilter | undefined {
  const filter: { -readonly [K in keyof SeriesFilter]: SeriesFilter[K] } = {};
  const intersect = (names: readonly string[]): void => {
    filter.metrics = filter.metrics === undefined ? names : filter.metrics.filter((n) => names.includes(n));
  };
  for (const m of matchers) {
    if (m.name === '__name__') {
      if (m.type === '=') intersect([m.value]);
      else if (m.type === '=~' && LITERAL_ALTERNATION.test(m.value)) intersect(m.value.split('|'));
      else if (m.type === '=~' && filter.metricPrefix === undefined) {
        const prefix = LITERAL_PREFIX.exec(m.value)?.[1];
        if (prefix !== undefined) filter.metricPrefix = prefix;
      }
      continue;
    }
    if (m.type !== '=' || !Object.hasOwn(COLUMN_LABELS, m.name)) continue;
    const field = COLUMN_LABELS[m.name as keyof typeof COLUMN_LABELS];
    if (field === 'metric') continue;
    if (filter[field] !== undefined && filter[field] !== m.value) return undefined;
    filter[field] = m.value;
  }
  if (filter.metrics?.length === 0) return undefined;
  return filter;
}

/** True when every compiled matcher accepts `labels`. */
export function matchesAll(tests: readonly (readonly [string, ValueTest])[], labels: Labels): boolean {
  for (const [name, test] of tests) {
    if (!test(Object.hasOwn(labels, name) ? labels[name]! : '')) return false;
  }
  return true;
}

/** Map a store error of a selection to the PromQL error the API reports. */
export function selectionError(error: unknown): unknown {
  if (hasCode(error, 'READ_BUDGET_EXCEEDED')) return new PromQLError('execution', TOO_MANY_SAMPLES);
  if (hasCode(error, 'READ_TIMEOUT')) return new PromQLError('timeout', 'query timed out in query execution');
  if (error instanceof Error && error.name === 'AbortError') {
    return new PromQLError('timeout', 'query timed out in query execution');
  }
  return error;
}

/** One selected series with its label view, as {@link selectWithLabels} returns it. */
export interface LabelledSeries extends SelectedSeries {
  labels: Labels;
}

/**
 * The stored series matching `matchers` with samples in [startMs, endMs] (only the newest one
 * each with `latestOnly`), with their label views, ordered by series id. `keep` may refuse more
 * series (e.g. those of inactive GPUs).
 */
export async function selectWithLabels(
  store: SampleStore,
  selection: SeriesSelection & { latestOnly?: boolean; keep?: (series: StoredSeries) => boolean },
  options: StoreQueryableOptions = {},
  signal?: AbortSignal,
): Promise<LabelledSeries[]> {
  const filter = pushdownFilter(selection.matchers);
  if (filter === undefined) return [];
  const tests = selection.matchers.map((m) => [m.name, compileMatcher(m)] as const);
  const views = new Map<number, Labels>();
  const accept = (series: StoredSeries): boolean => {
    if (selection.keep !== undefined && !selection.keep(series)) return false;
    const labels = seriesLabels(series);
    if (!matchesAll(tests, labels)) return false;
    views.set(series.id, labels);
    return true;
  };
  const run = options.run ?? (<T>(read: () => Promise<T>) => read());
  let selected: SelectedSeries[];
  try {
    selected = await run(() =>
      store.selectSeries(
        {
          filter,
          accept,
          startMs: selection.startMs,
          endMs: selection.endMs,
          latestOnly: selection.latestOnly,
          maxSamples: options.maxSamples,
        },
        signal,
      ),
    );
  } catch (error) {
    throw selectionError(error);
  }
  return selected.map((s) => ({ ...s, labels: views.get(s.series.id) ?? seriesLabels(s.series) }));
}

/** Merge two ascending sample lists; on equal times the first list's sample wins. */
function mergeSamples(
  a: { timestamps: readonly number[]; values: readonly number[] },
  b: { timestamps: readonly number[]; values: readonly number[] },
): { timestamps: number[]; values: number[] } {
  const timestamps: number[] = [];
  const values: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.timestamps.length || j < b.timestamps.length) {
    const ta = i < a.timestamps.length ? a.timestamps[i]! : Infinity;
    const tb = j < b.timestamps.length ? b.timestamps[j]! : Infinity;
    if (ta <= tb) {
      timestamps.push(ta);
      values.push(a.values[i]!);
      i++;
      if (ta === tb) j++;
    } else {
      timestamps.push(tb);
      values.push(b.values[j]!);
      j++;
    }
  }
  return { timestamps, values };
}

/** Group series by label view, merging the samples of series that share one. */
export function mergeByLabels(series: readonly LabelledSeries[]): SeriesData[] {
  const byKey = new Map<string, SeriesData>();
  for (const s of series) {
    const key = labelsKey(s.labels);
    const seen = byKey.get(key);
    if (seen === undefined) {
      byKey.set(key, { labels: s.labels, timestamps: s.timestamps, values: s.values });
    } else {
      byKey.set(key, { labels: seen.labels, ...mergeSamples(seen, s) });
    }
  }
  return [...byKey.values()];
}

/** The sample store as a PromQL {@link Queryable}. */
export class StoreQueryable implements Queryable {
  constructor(
    private readonly store: SampleStore,
    private readonly options: StoreQueryableOptions = {},
  ) {}

  async select(selection: SeriesSelection, signal?: AbortSignal): Promise<SeriesData[]> {
    if (selection.endMs < selection.startMs) return [];
    const selected = await selectWithLabels(this.store, selection, this.options, signal);
    return mergeByLabels(selected);
  }
}
