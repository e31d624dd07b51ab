/**
 * Series identity <-> Prometheus labels for the remote-write sample store. Forward, a series gets
 * the label set of our PromQL API and /federate ({@link seriesLabels}: `__name__`, `gpu`, `UUID`,
 * `device`, `modelName`, `Hostname`, `container`, `pod`, `namespace`, `cluster`, and the stored
 * labels), plus what that view cannot give back exactly:
 * - `nexus_labels`: the series' own labels as sorted JSON, when it has any (the view drops empty
 *   values and `instance`/`job`/aliases, and the columns win over labels of the same name);
 * - `nexus_cluster`: the cluster id, only when a stored `cluster` label hides it.
 * Backward, {@link seriesKeyOf} rebuilds the exact {@link SeriesKey} from those labels; a series
 * written by someone else (no `nexus_labels`) gets its non-column labels as `labels`.
 */
import { createHash } from 'node:crypto';
import type { SeriesKey } from '../../domain/types.js';
import { COLUMN_LABELS, seriesLabels } from '../../promql/labels-view.js';

/** Label holding a series' own labels as sorted JSON. */
export const LABELS_LABEL = 'nexus_labels';
/** Label holding the cluster id when a stored `cluster` label differs from it. */
export const CLUSTER_LABEL = 'nexus_cluster';

/** A label set as the TSDB returns it. */
export type PromLabels = Record<string, string>;

/** `labels` with its keys sorted, as JSON (the same set in any key order gives the same text). */
function canonicalLabels(labels: Record<string, string>): string {
  const sorted: Record<string, string> = {};
  for (const k of Object.keys(labels).sort()) {
    Object.defineProperty(sorted, k, {
      value: labels[k],
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return JSON.stringify(sorted);
}

/** The Prometheus labels a series is written with (see the module comment). */
export function remoteLabels(series: SeriesKey): PromLabels {
  const out: PromLabels = { ...seriesLabels(series) };
  if (Object.keys(series.labels).length > 0) out[LABELS_LABEL] = canonicalLabels(series.labels);
  if (out.cluster !== series.clusterId) out[CLUSTER_LABEL] = series.clusterId;
  return out;
}

/** The series identity stored under `labels` (the inverse of {@link remoteLabels}). */
export function seriesKeyOf(labels: PromLabels): SeriesKey {
  const get = (name: string): string => (Object.hasOwn(labels, name) ? (labels[name] ?? '') : '');
  let own: Record<string, string>;
  const json = labels[LABELS_LABEL];
  if (json !== undefined) {
    own = JSON.parse(json) as Record<string, string>;
  } else {
    own = {};
    const skip = new Set<string>([...Object.keys(COLUMN_LABELS), 'cluster', CLUSTER_LABEL]);
    for (const [k, v] of Object.entries(labels)) if (!skip.has(k)) own[k] = v;
  }
  return {
    clusterId: labels[CLUSTER_LABEL] ?? get('cluster'),
    hostname: get('Hostname'),
    gpuId: get('gpu'),
    uuid: get('UUID'),
    device: get('device'),
    modelName: get('modelName'),
    metric: get('__name__'),
    container: get('container'),
    pod: get('pod'),
    namespace: get('namespace'),
    labels: own,
  };
}

/** One text per series identity (labels in any key order give the same text). */
export function identityOf(series: SeriesKey): string {
  return JSON.stringify([
    series.clusterId,
    series.hostname,
    series.gpuId,
    series.uuid,
    series.device,
    series.modelName,
    series.metric,
    series.container,
    series.pod,
    series.namespace,
    canonicalLabels(series.labels),
  ]);
}

/** A stable numeric id of a series identity (48 bits of its SHA-1), the same in every process. */
export function seriesIdOf(identity: string): number {
  return Number.parseInt(createHash('sha1').update(identity).digest('hex').slice(0, 12), 16);
}

/** `text` as a literal inside a PromQL regex (RE2 metacharacters escaped). */
export function regexLiteral(text: string): string {
  return text.replace(/[\\.^$|?*+()[\]{}]/g, '\\$&');
}

/** `text` as a PromQL double-quoted string. */
export function quoted(text: string): string {
  return `"${text.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`;
}

/** A series selector `{a="x",b=~"y"}` from label matchers (name, operator, value). */
export function selector(matchers: readonly (readonly [string, '=' | '=~', string])[]): string {
  const parts = matchers.map(([name, op, value]) => `${name}${op}${quoted(value)}`);
  // A selector needs a matcher that an empty label cannot satisfy.
  if (!matchers.some(([name]) => name === '__name__')) parts.unshift('__name__!=""');
  return `{${parts.join(',')}}`;
}
