/**
 * Series identity (GPU + metric + workload + label set): its canonical text, whose hash is stored
 * in `series.series_key` (unique), and the in-memory series id cache of the write path.
 */
import { createHash } from 'node:crypto';
import type { SeriesKey } from '../domain/types.js';

/** Canonical labels text: keys sorted, so the same label set in another key order is the same series. */
export function canonicalLabels(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  return JSON.stringify(keys.map((k) => [k, labels[k]]));
}

/** Canonical, unambiguous text of a series identity. */
export function seriesIdentity(s: SeriesKey): string {
  return (
    JSON.stringify([
      s.clusterId,
      s.hostname,
      s.gpuId,
      s.uuid,
      s.device,
      s.modelName,
      s.metric,
      s.container,
      s.pod,
      s.namespace,
    ]) + canonicalLabels(s.labels)
  );
}

/** Value of `series.series_key` for a canonical identity (fixed size, whatever the labels). */
export function seriesKeyHash(identity: string): string {
  return createHash('sha256').update(identity).digest('hex');
}

/** PostgreSQL text cannot hold NUL; bad input may carry one, so store U+FFFD instead. */
export function pgText(s: string): string {
  return s.includes('\0') ? s.replaceAll('\0', '\uFFFD') : s;
}

/** Labels as JSON for a jsonb column (jsonb rejects \u0000 too, so NULs become U+FFFD first). */
export function pgLabelsJson(labels: Record<string, string>): string {
  const json = JSON.stringify(labels);
  if (!json.includes('\\u0000')) return json;
  return JSON.stringify(Object.fromEntries(Object.entries(labels).map(([k, v]) => [pgText(k), pgText(v)])));
}

/** Same label set (order-insensitive)? Values are strings, so a missing key never matches. */
export function sameLabels(a: Record<string, string>, b: Record<string, string>): boolean {
  if (a === b) return true;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const k of keys) if (a[k] !== b[k]) return false;
  return true;
}

/** Same series identity? */
export function sameSeries(a: SeriesKey, b: SeriesKey): boolean {
  return (
    a.metric === b.metric &&
    a.uuid === b.uuid &&
    a.hostname === b.hostname &&
    a.gpuId === b.gpuId &&
    a.clusterId === b.clusterId &&
    a.device === b.device &&
    a.modelName === b.modelName &&
    a.container === b.container &&
    a.pod === b.pod &&
    a.namespace === b.namespace &&
    sameLabels(a.labels, b.labels)
  );
}

/** Read side of a series id cache. */
export interface SeriesIdLookup {
  get(key: SeriesKey): number | undefined;
}

/** Default bound of {@link SeriesIdCache}. */
export const DEFAULT_SERIES_CACHE_SIZE = 200_000;

interface CacheEntry {
  key: SeriesKey;
  id: number;
}

/**
 * Series identity -> id, in memory. Looked up per sample on the write path, so it avoids building
 * a canonical string per sample (costly per row; docs/performance.md): two map lookups on uuid and metric, then a
 * field and label comparison. Bounded: past `maxEntries` it starts over empty (series churn with
 * pod names, and misses only cost a lookup in the database). Ids never change once assigned.
 */
export class SeriesIdCache implements SeriesIdLookup {
  readonly #byUuid = new Map<string, Map<string, CacheEntry[]>>();
  #size = 0;

  constructor(readonly maxEntries: number = DEFAULT_SERIES_CACHE_SIZE) {}

  get size(): number {
    return this.#size;
  }

  get(key: SeriesKey): number | undefined {
    const entries = this.#byUuid.get(key.uuid)?.get(key.metric);
    if (entries === undefined) return undefined;
    for (const e of entries) if (sameSeries(key, e.key)) return e.id;
    return undefined;
  }

  /** Add resolved series (only after the transaction that resolved them committed). */
  addAll(resolved: Iterable<{ key: SeriesKey; id: number }>): void {
    for (const { key, id } of resolved) {
      if (this.get(key) !== undefined) continue;
      if (this.#size >= this.maxEntries) this.clear();
      let byMetric = this.#byUuid.get(key.uuid);
      if (byMetric === undefined) this.#byUuid.set(key.uuid, (byMetric = new Map()));
      let entries = byMetric.get(key.metric);
      if (entries === undefined) byMetric.set(key.metric, (entries = []));
      entries.push({ key: copySeriesKey(key), id });
      this.#size += 1;
    }
  }

  clear(): void {
    this.#byUuid.clear();
    this.#size = 0;
  }
}

/** The series fields of a sample (or key), with its own copy of the labels. */
export function copySeriesKey(s: SeriesKey): SeriesKey {
  return {
    clusterId: s.clusterId,
    hostname: s.hostname,
    gpuId: s.gpuId,
    uuid: s.uuid,
    device: s.device,
    modelName: s.modelName,
    metric: s.metric,
    container: s.container,
    pod: s.pod,
    namespace: s.namespace,
    labels: { ...s.labels },
  };
}
