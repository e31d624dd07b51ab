/**
 * Prometheus text exposition (format 0.0.4) of federated series: one `# TYPE` line per metric
 * (gauge or counter from the DCGM catalog, untyped otherwise), then `name{labels} value timestamp`
 * lines, metrics in name order and series in label order, as Prometheus' /federate writes them.
 */
import { fieldInfo } from '../domain/catalog.js';
import { formatValue } from './format.js';
import type { Labels } from './types.js';

/** Content-Type of the text exposition format 0.0.4. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

/** One series to expose: its label view (with `__name__`) and its newest sample. */
export interface FederatedSample {
  labels: Labels;
  timestampMs: number;
  value: number;
}

function escapeLabelValue(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
}

/** Byte-wise comparison of two label sets without `__name__` (their rendered text). */
function labelText(labels: Labels): string {
  return Object.keys(labels)
    .filter((k) => k !== '__name__')
    .sort()
    .map((k) => `${k}="${escapeLabelValue(labels[k]!)}"`)
    .join(',');
}

/** Render `samples` as text exposition format 0.0.4 (see the module comment). */
export function renderFederation(samples: readonly FederatedSample[]): string {
  const byMetric = new Map<string, { labels: string; line: string }[]>();
  for (const s of samples) {
    const name = s.labels.__name__ ?? '';
    const labels = labelText(s.labels);
    const line = `${name}{${labels}} ${formatValue(s.value)} ${Math.round(s.timestampMs)}`;
    let lines = byMetric.get(name);
    if (lines === undefined) byMetric.set(name, (lines = []));
    lines.push({ labels, line });
  }
  let out = '';
  for (const name of [...byMetric.keys()].sort()) {
    const kind = fieldInfo(name)?.kind ?? (name.startsWith('nexus_gpu_health') ? 'gauge' : 'untyped');
    out += `# TYPE ${name} ${kind}\n`;
    const lines = byMetric
      .get(name)!
      .sort((a, b) => (a.labels < b.labels ? -1 : a.labels > b.labels ? 1 : 0));
    for (const { line } of lines) out += `${line}\n`;
  }
  return out;
}
