// Workload analytics (docs/analytics.md): GPU-hours, energy and cost per group, idle-but-allocated
// GPUs and peer outliers over a chosen range. `#/analytics?range=24h&end=<ISO time>&by=namespace`;
// the range ends now unless `end` names a time. Each table downloads as CSV (the API's text/csv).
import { useState } from 'preact/hooks';
import { getAnalytics, getAnalyticsCsv, type AnalyticsKind, type AnalyticsRow } from '../api';
import { useLoad } from '../hooks';
import { href, setQuery } from '../router';
import { ListTable } from './list-table';
import { RangeButtons } from './range-buttons';

const RANGES: [string, number][] = [
  ['1h', 3_600_000],
  ['6h', 6 * 3_600_000],
  ['24h', 24 * 3_600_000],
  ['7d', 7 * 86_400_000],
  ['30d', 30 * 86_400_000],
];
/** Idle and outlier answers span at most 7 days (the API's minute grain). */
const MINUTE_GRAIN_MAX_MS = 7 * 86_400_000;
const GROUPS = ['namespace', 'pod', 'container', 'host', 'model'];

/** One column: API field, heading, and how to show a value. */
type Column = [field: string, heading: string, show?: (v: string | number) => string];

const fixed = (digits: number) => (v: string | number) => (typeof v === 'number' ? v.toFixed(digits) : v);
const percent = (v: string | number) => (typeof v === 'number' ? `${(v * 100).toFixed(1)} %` : v);

const ATTRIBUTION: Column[] = [
  ['key', 'group'],
  ['gpus', 'GPUs'],
  ['gpu_hours_allocated', 'GPU-h allocated', fixed(2)],
  ['gpu_hours_busy', 'GPU-h busy', fixed(2)],
  ['waste_fraction', 'waste', percent],
  ['energy_kwh', 'kWh', fixed(2)],
  ['avg_utilization', 'avg util %', fixed(1)],
  ['peak_utilization', 'peak util %', fixed(0)],
  ['avg_memory_used_mib', 'avg mem MiB', fixed(0)],
  ['allocated_cost', 'cost allocated', fixed(2)],
  ['effective_cost', 'cost effective', fixed(2)],
];
const IDLE: Column[] = [
  ['namespace', 'namespace'],
  ['pod', 'pod'],
  ['hostname', 'host'],
  ['gpu_id', 'GPU'],
  ['mig_instance', 'MIG'],
  ['start', 'from'],
  ['end', 'to'],
  ['gpu_hours_wasted', 'GPU-h wasted', fixed(2)],
  ['max_utilization', 'max util %', fixed(1)],
];
const OUTLIERS: Column[] = [
  ['hostname', 'host'],
  ['gpu_id', 'GPU'],
  ['model', 'model'],
  ['signal', 'signal'],
  ['start', 'from'],
  ['end', 'to'],
  ['max_score', 'max deviations', fixed(1)],
  ['mean_deviation', 'mean off siblings', fixed(1)],
  ['peers', 'peers'],
];

async function download(kind: AnalyticsKind, params: Record<string, string>): Promise<void> {
  const text = await getAnalyticsCsv(kind, params);
  const link = document.createElement('a');
  link.href = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  link.download = `${kind}.csv`;
  link.click();
  URL.revokeObjectURL(link.href);
}

function Table({
  kind,
  params,
  columns,
  empty,
  gpuLink,
}: {
  kind: AnalyticsKind;
  params: Record<string, string>;
  columns: Column[];
  empty: string;
  /** Link the row's host/GPU cells to the GPU page (needs cluster_id or the only cluster). */
  gpuLink?: boolean;
}) {
  const [answer] = useLoad((signal) => getAnalytics(kind, params, signal), [kind, JSON.stringify(params)]);
  const [error, setError] = useState('');
  const rows: AnalyticsRow[] = answer.status === 'ok' ? answer.value.rows : [];
  return (
    <div class="analytics" id={`analytics-${kind}`} data-state={answer.status}>
      <p class="muted">
        {answer.status === 'ok'
          ? `${rows.length} rows · ${answer.value.start} to ${answer.value.end} · ${answer.value.resolution}`
          : answer.status === 'loading'
            ? 'Computing…'
            : ''}{' '}
        <button
          type="button"
          onClick={() => download(kind, params).catch((e: unknown) => setError(String((e as Error).message)))}
        >
          CSV
        </button>
      </p>
      {answer.status === 'error' ? <p class="error">{answer.message}</p> : null}
      {error ? <p class="error">{error}</p> : null}
      {answer.status === 'ok' && rows.length === 0 ? <p class="empty">{empty}</p> : null}
      {rows.length > 0 ? (
        <ListTable headings={columns.map(([, heading]) => heading)}>
          {rows.map((row, i) => (
            <tr key={i}>
              {columns.map(([field, , show]) => {
                const value = row[field] ?? '';
                const text = show ? show(value) : String(value);
                if (gpuLink && field === 'gpu_id' && typeof row.cluster_id === 'string')
                  return (
                    <td key={field} data-field={field}>
                      <a href={href('clusters', row.cluster_id, 'hosts', String(row.hostname), 'gpus', text)}>
                        {text}
                      </a>
                    </td>
                  );
                return (
                  <td key={field} data-field={field}>
                    {text}
                  </td>
                );
              })}
            </tr>
          ))}
        </ListTable>
      ) : null}
    </div>
  );
}

/** `#/analytics`: attribution, idle-but-allocated and outliers over one range. */
export function AnalyticsView({ query }: { query: URLSearchParams }) {
  const rangeName = RANGES.some(([n]) => n === query.get('range')) ? query.get('range')! : '24h';
  const span = RANGES.find(([n]) => n === rangeName)![1];
  const by = query.get('by') ?? 'namespace';
  const endText = query.get('end') ?? '';
  const endMs = Date.parse(endText);
  // "now" is taken once per route change, so the three tables ask about the same range.
  const [now] = useState(() => Date.now());
  const end = Number.isFinite(endMs) ? endMs : now;
  const range = { start: new Date(end - span).toISOString(), end: new Date(end).toISOString() };
  const minuteSpan = Math.min(span, MINUTE_GRAIN_MAX_MS);
  const recent = { start: new Date(end - minuteSpan).toISOString(), end: range.end };
  return (
    <section>
      <h1>Workload analytics</h1>
      <div class="toolbar" role="group" aria-label="Time range">
        <RangeButtons ranges={RANGES} current={rangeName} />
        <label>
          ending at{' '}
          <input
            id="analytics-end"
            type="text"
            placeholder="now (or an ISO time)"
            value={endText}
            onChange={(e) => setQuery({ end: e.currentTarget.value.trim() })}
          />
        </label>
      </div>
      <p class="muted">
        From the stored samples of workloads (series with a namespace, pod or container); the arithmetic is in
        docs/analytics.md. Long ranges read rollups, with the same answer as the raw samples.
      </p>
      <h2>Attribution</h2>
      <label>
        by{' '}
        <select id="analytics-by" value={by} onChange={(e) => setQuery({ by: e.currentTarget.value })}>
          {GROUPS.map((g) => (
            <option key={g} value={g}>
              {g}
            </option>
          ))}
        </select>
      </label>
      <Table
        kind="attribution"
        params={{ ...range, by }}
        columns={ATTRIBUTION}
        empty="No workload samples in this range."
      />
      <h2>Idle but allocated</h2>
      <p class="muted">
        GPUs held by a workload with utilization under 5 % for 30 minutes or more
        {minuteSpan < span ? ' (over the last 7 days of the range)' : ''}.
      </p>
      <Table kind="idle" params={recent} columns={IDLE} empty="No idle allocated GPU." />
      <h2>Peer outliers</h2>
      <p class="muted">
        GPUs whose temperature, power or SM clock departs from their siblings (same host and model) by more
        than 5 robust deviations for 10 minutes
        {minuteSpan < span ? ' (over the last 7 days of the range)' : ''}.
      </p>
      <Table kind="outliers" params={recent} columns={OUTLIERS} empty="No outlier." gpuLink />
    </section>
  );
}
