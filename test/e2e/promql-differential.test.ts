/**
 * Differential PromQL test: the project's /api/v1/query and /api/v1/query_range answer exactly as
 * a real Prometheus 2.42 (Debian `prometheus`) on the same data.
 *
 * One generated dataset (test/support/promql-data.ts: 3 hosts x 2-4 GPUs x 14 dcgm-exporter metrics,
 * 2.5 h at 30 s, a counter reset, a 10-minute gap on one GPU) is backfilled into Prometheus with
 * `promtool tsdb create-blocks-from openmetrics` and ingested by an embedded runtime from the same
 * numbers as Prometheus text (its file source); the stored sample count must equal the generated
 * one. Every corpus expression (test/e2e/promql-corpus.ts) is then sent to both servers over HTTP
 * with the same parameters: instant queries before, inside, on a sample, at the edges of the data,
 * inside the gap and after the end; range queries at 15 s, 60 s, 5 m and 1 h steps. Both answers
 * must have the same status, result type, label sets, and per series the same timestamps and
 * values (relative difference <= 1e-9; NaN equals NaN; infinities exact); errors must agree on
 * `errorType` (malformed queries: `bad_data`, failing evaluations: `execution`). The parameter
 * forms clients send (RFC 3339 times, duration steps, form-encoded POST) and the metadata queries
 * behind the dashboard's template variables (label values, series, labels) are compared too.
 * Every mismatch is collected and printed (expression, query, series, both values)
 * before the test fails, so one run shows all of them; PROMQL_DIFF_REPORT=<file> also writes them
 * as JSON. The project stores in its default embedded store (SQLite, in memory);
 * PROMQL_DIFF_STORE=pglite runs the same test on PGlite, PROMQL_DIFF_STORE=postgres on a throwaway
 * PostgreSQL (test/harness/postgres.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import {
  getJson,
  startBackfilledPrometheus,
  type ApiAnswer,
  type BackfilledPrometheus,
} from '../harness/promtool.js';
import { generatePromqlDataset, writeDataset, type PromqlDataset } from '../support/promql-data.js';
import { buildCorpus, malformedQueries, type CorpusEntry } from './promql-corpus.js';

const CLUSTER = 'promql';
/** Relative tolerance on values. */
const TOLERANCE = 1e-9;
/** Queries in flight at once, per server. */
const CONCURRENCY = 4;

const dir = mkdtempSync(join(tmpdir(), 'nexus-promql-diff-'));
// 2.5 h of data ending 30-60 minutes ago, on a 30 s grid: old enough that "after the end" is still
// in the past, recent enough for the default 7-day raw retention.
const dataset: PromqlDataset = generatePromqlDataset({
  startMs: Math.floor(Date.now() / 1_800_000) * 1_800_000 - 3 * 3_600_000,
  cluster: CLUSTER,
});
const corpus: CorpusEntry[] = buildCorpus(dataset);

const STORE = (['postgres', 'pglite'] as const).find((s) => s === process.env.PROMQL_DIFF_STORE) ?? 'sqlite';

let prometheus: BackfilledPrometheus;
let postgres: PostgresHarness | undefined;
let runtime: EmbeddedRuntime;

/** One query, as the parameters both servers get. */
interface Query {
  kind: 'instant' | 'range';
  /** What the times mean (for the report). */
  label: string;
  params: Record<string, string>;
}

const sec = (ms: number): string => String(ms / 1000);

function queries(d: PromqlDataset): Query[] {
  const { startMs: s, endMs: e } = d;
  const gapInside = d.gap === undefined ? s + 3_600_000 : d.gap.fromMs + 7 * 60_000;
  // The last sample before the gap is exactly 5 minutes (the lookback) before this, then 1 ms more.
  const lookbackEdge = d.gap === undefined ? s + 3_600_000 : d.gap.fromMs - d.intervalMs + 5 * 60_000;
  const instants: [string, number][] = [
    ['before the start', s - 10 * 60_000],
    ['first sample', s],
    ['start + 90 s', s + 90_000],
    ['inside, off grid', s + 45 * 60_000 + 7_500],
    ['on a sample', s + 100 * 60_000],
    ['inside the gap', gapInside],
    ['gap: lookback edge', lookbackEdge],
    ['gap: lookback edge + 1 ms', lookbackEdge + 1],
    ['last sample', e],
    ['end + 3 m', e + 3 * 60_000],
    ['end + 20 m', e + 20 * 60_000],
  ];
  const ranges: [string, number, number, number][] = [
    ['15s around the gap', s + 40 * 60_000, s + 80 * 60_000, 15_000],
    ['60s over all', s - 5 * 60_000, e + 10 * 60_000, 60_000],
    ['5m off grid', s + 17_000, e + 6 * 60_000, 300_000],
    ['1h', s, e, 3_600_000],
  ];
  return [
    ...instants.map(([label, t]): Query => ({
      kind: 'instant',
      label: `${label} (t=${sec(t)})`,
      params: { time: sec(t) },
    })),
    ...ranges.map(([label, a, b, step]): Query => ({
      kind: 'range',
      label: `step ${label} (${sec(a)}..${sec(b)}/${step / 1000})`,
      params: { start: sec(a), end: sec(b), step: String(step / 1000) },
    })),
  ];
}

function path(expr: string, q: Query): string {
  const search = new URLSearchParams({ query: expr, ...q.params });
  return `/api/v1/${q.kind === 'instant' ? 'query' : 'query_range'}?${search.toString()}`;
}

/** Run `work` over `items` with at most `n` in flight. */
async function pool<T, R>(items: readonly T[], n: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await work(items[i]!);
      }
    }),
  );
  return out;
}

interface Body {
  status?: string;
  errorType?: string;
  error?: string;
  data?: { resultType?: string; result?: unknown };
}

type Sample = [number, string];

function labelsText(metric: Record<string, string>): string {
  const { __name__: name, ...rest } = metric;
  const pairs = Object.keys(rest)
    .sort()
    .map((k) => `${k}=${JSON.stringify(rest[k])}`);
  return `${name ?? ''}{${pairs.join(',')}}`;
}

function sameValue(a: string, b: string): boolean {
  if (a === b) return true;
  const x = Number(a);
  const y = Number(b);
  if (Number.isNaN(x) || Number.isNaN(y)) return Number.isNaN(x) && Number.isNaN(y);
  if (!Number.isFinite(x) || !Number.isFinite(y)) return x === y;
  return Math.abs(x - y) <= TOLERANCE * Math.max(Math.abs(x), Math.abs(y));
}

/** Series of a vector or matrix answer by their label text; duplicates reported. */
function bySeries(
  resultType: string,
  result: unknown,
  problems: string[],
  who: string,
): Map<string, Sample[]> {
  const out = new Map<string, Sample[]>();
  for (const s of result as { metric: Record<string, string>; value?: Sample; values?: Sample[] }[]) {
    const key = labelsText(s.metric ?? {});
    if (out.has(key)) problems.push(`${who} returned ${key} twice`);
    out.set(key, resultType === 'vector' ? [s.value!] : (s.values ?? []));
  }
  return out;
}

/**
 * Differences between Prometheus' answer and ours, as short lines (empty: equal). Series order
 * counts only when `ordered` (an instant `sort`/`sort_desc`); otherwise they are compared as sets.
 */
function compare(theirs: ApiAnswer, ours: ApiAnswer, ordered = false): string[] {
  const t = theirs.body as Body;
  const o = ours.body as Body;
  if (t.status !== 'success' || o.status !== 'success') {
    if (t.status === o.status && t.errorType === o.errorType && theirs.status === ours.status) return [];
    return [
      `status: prometheus HTTP ${theirs.status} ${t.status} ${t.errorType ?? ''} ${t.error ?? ''} | ours HTTP ${ours.status} ${o.status} ${o.errorType ?? ''} ${(o.error ?? JSON.stringify(o)).slice(0, 300)}`,
    ];
  }
  const tt = t.data?.resultType ?? '';
  const ot = o.data?.resultType ?? '';
  if (tt !== ot) return [`resultType: prometheus ${tt} | ours ${ot}`];
  if (tt === 'scalar' || tt === 'string') {
    const [ta, tv] = t.data!.result as Sample;
    const [oa, ov] = o.data!.result as Sample;
    const equal = ta === oa && (tt === 'string' ? tv === ov : sameValue(tv, ov));
    return equal ? [] : [`${tt}: prometheus [${ta}, ${tv}] | ours [${oa}, ${ov}]`];
  }
  const problems: string[] = [];
  const ts = bySeries(tt, t.data!.result, problems, 'prometheus');
  const os = bySeries(tt, o.data!.result, problems, 'ours');
  if (ordered && problems.length === 0 && ts.size === os.size) {
    const theirOrder = [...ts.keys()];
    const ourOrder = [...os.keys()];
    const at = theirOrder.findIndex((key, i) => key !== ourOrder[i]);
    if (at !== -1)
      problems.push(`order differs at #${at}: prometheus ${theirOrder[at]} | ours ${ourOrder[at]}`);
  }
  for (const key of ts.keys()) if (!os.has(key)) problems.push(`missing series ${key}`);
  for (const key of os.keys()) if (!ts.has(key)) problems.push(`extra series ${key}`);
  for (const [key, tv] of ts) {
    const ov = os.get(key);
    if (ov === undefined) continue;
    const tTimes = new Map(tv.map(([at, v]) => [Math.round(at * 1000), v]));
    const oTimes = new Map(ov.map(([at, v]) => [Math.round(at * 1000), v]));
    const wrong: string[] = [];
    for (const [at, v] of tTimes) {
      const mine = oTimes.get(at);
      if (mine === undefined) wrong.push(`t=${at / 1000} prometheus ${v} | ours none`);
      else if (!sameValue(v, mine)) wrong.push(`t=${at / 1000} prometheus ${v} | ours ${mine}`);
    }
    for (const [at, v] of oTimes)
      if (!tTimes.has(at)) wrong.push(`t=${at / 1000} prometheus none | ours ${v}`);
    if (wrong.length > 0) {
      const shown = wrong.slice(0, 3).join('; ');
      problems.push(`${key}: ${wrong.length} point(s) differ: ${shown}${wrong.length > 3 ? '; ...' : ''}`);
    }
  }
  return problems;
}

beforeAll(async () => {
  const omFile = join(dir, 'data.om');
  const textFile = join(dir, 'data.prom');
  await writeDataset(dataset, 'openmetrics', omFile);
  await writeDataset(dataset, 'text', textFile);
  prometheus = await startBackfilledPrometheus(omFile);
  const overrides: Record<string, unknown> = {
    PORT: 0,
    HOST: '127.0.0.1',
    CLUSTER_ID: CLUSTER,
    LOG_LEVEL: 'silent',
  };
  if (STORE === 'postgres') {
    postgres = await startPostgres();
    overrides.DATABASE_URL = await postgres.createDatabase('promql_diff');
  } else {
    overrides.MEMORY = true;
    overrides.EMBEDDED_STORE = STORE;
  }
  runtime = await startEmbedded({ config: loadConfig({}, overrides), logger: createLogger('silent') });
  expect(runtime.topology.samples).toBe(STORE);
  const summary = await runtime.ingest({ spec: textFile });
  expect(summary).toMatchObject({ rows: dataset.sampleCount, badRows: 0, refusedByStore: 0 });
}, 120_000);

afterAll(async () => {
  await prometheus?.stop();
  await runtime?.close();
  await postgres?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe(`PromQL against Prometheus 2.42 on the same data (${STORE})`, () => {
  it('holds the same samples in both stores', async () => {
    expect(await runtime.store.countSamples()).toBe(dataset.sampleCount);
    const answer = await prometheus.get(
      `/api/v1/query?${new URLSearchParams({ query: '{__name__=~"DCGM_.+"}[1d]', time: sec(dataset.endMs) }).toString()}`,
    );
    const result = (answer.body as { data: { result: { values: Sample[] }[] } }).data.result;
    expect(result).toHaveLength(dataset.series.length);
    expect(result.reduce((sum, s) => sum + s.values.length, 0)).toBe(dataset.sampleCount);
  });

  it('has a valid corpus: >= 60 expressions, each answered by Prometheus with data', async () => {
    expect(corpus.length).toBeGreaterThanOrEqual(60);
    expect(corpus.filter((e) => e.group === 'dashboard')).toHaveLength(16);
    const instants = queries(dataset).filter((q) => q.kind === 'instant');
    const bad: string[] = [];
    await pool(corpus, CONCURRENCY, async (entry) => {
      let withData = 0;
      for (const q of instants) {
        const { status, body } = await prometheus.get(path(entry.expr, q));
        const b = body as Body;
        if (status !== 200 || b.status !== 'success')
          bad.push(`${entry.expr} @ ${q.label}: ${b.error ?? status}`);
        const r = b.data?.result;
        if (Array.isArray(r) ? r.length > 0 : r !== undefined) withData++;
      }
      if (withData === 0) bad.push(`${entry.expr}: no data at any instant`);
    });
    expect(bad).toEqual([]);
  }, 120_000);

  it('has a comparison that sees every kind of difference', () => {
    const vector = (...series: [Record<string, string>, string][]): ApiAnswer => ({
      status: 200,
      body: {
        status: 'success',
        data: { resultType: 'vector', result: series.map(([metric, v]) => ({ metric, value: [100, v] })) },
      },
    });
    const a = { __name__: 'm', gpu: '0' };
    const b = { __name__: 'm', gpu: '1' };
    expect(compare(vector([a, '1'], [b, '2']), vector([b, '2'], [a, '1']))).toEqual([]);
    expect(compare(vector([a, '1'], [b, '2']), vector([b, '2'], [a, '1']), true)).toHaveLength(1);
    expect(compare(vector([a, '1']), vector([a, String(1 + 1e-10)]))).toEqual([]);
    expect(compare(vector([a, '1']), vector([a, String(1 + 1e-8)]))).toHaveLength(1);
    expect(compare(vector([a, 'NaN']), vector([a, 'NaN']))).toEqual([]);
    expect(compare(vector([a, 'NaN']), vector([a, '0']))).toHaveLength(1);
    expect(compare(vector([a, '+Inf']), vector([a, '1e308']))).toHaveLength(1);
    expect(compare(vector([a, '0']), vector([a, '1e-300']))).toHaveLength(1);
    expect(compare(vector([a, '1'], [b, '2']), vector([a, '1']))).toEqual([`missing series m{gpu="1"}`]);
    expect(compare(vector([a, '1']), vector([a, '1'], [b, '2']))).toEqual([`extra series m{gpu="1"}`]);
    const error = (errorType: string): ApiAnswer => ({ status: 400, body: { status: 'error', errorType } });
    expect(compare(error('bad_data'), error('bad_data'))).toEqual([]);
    expect(compare(error('bad_data'), error('execution'))).toHaveLength(1);
    expect(compare(vector([a, '1']), error('bad_data'))).toHaveLength(1);
    const matrix = (values: Sample[]): ApiAnswer => ({
      status: 200,
      body: { status: 'success', data: { resultType: 'matrix', result: [{ metric: a, values }] } },
    });
    expect(
      compare(
        matrix([
          [1, '1'],
          [2, '2'],
        ]),
        matrix([
          [1, '1'],
          [2, '2'],
        ]),
      ),
    ).toEqual([]);
    expect(
      compare(
        matrix([
          [1, '1'],
          [2, '2'],
        ]),
        matrix([[1, '1']]),
      ),
    ).toHaveLength(1);
    expect(compare(matrix([[1, '1']]), matrix([[1.5, '1']]))).toHaveLength(1);
  });

  it('accepts the parameter forms Grafana and other clients send (RFC 3339, durations, POST)', async () => {
    const iso = (ms: number): string => new Date(ms).toISOString();
    const mid = dataset.startMs + 3_600_000;
    const expr = 'sum by (Hostname) (rate(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[5m]))';
    const forms: Record<string, string>[] = [
      { query: expr, time: iso(mid) },
      { query: expr, time: sec(mid + 123) },
      { query: expr, start: iso(mid - 1_800_000), end: iso(mid), step: '1m' },
      { query: expr, start: sec(mid - 1_800_000), end: sec(mid), step: '45.5' },
      { query: expr, start: sec(mid - 1_800_000), end: sec(mid), step: '90s', timeout: '30s' },
    ];
    const mismatches: string[] = [];
    for (const form of forms) {
      const kind = form.time === undefined ? 'query_range' : 'query';
      const body = new URLSearchParams(form).toString();
      const get = `/api/v1/${kind}?${body}`;
      const post = async (origin: string): Promise<ApiAnswer> => {
        const response = await fetch(`${origin}/api/v1/${kind}`, {
          method: 'POST',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
          body,
          signal: AbortSignal.timeout(30_000),
        });
        return { status: response.status, body: await response.json() };
      };
      const theirs = await prometheus.get(get);
      expect((theirs.body as Body).status, get).toBe('success');
      for (const line of compare(theirs, await getJson(`${runtime.address}${get}`)))
        mismatches.push(`GET ${get}: ${line}`);
      for (const line of compare(await post(prometheus.url), await post(runtime.address!)))
        mismatches.push(`POST ${body}: ${line}`);
    }
    if (mismatches.length > 0) console.log(`parameter form mismatches:\n${mismatches.join('\n')}`);
    expect(mismatches).toEqual([]);
  });

  it("answers the dashboard's template variable queries (label values, series, labels) as Prometheus", async () => {
    const hosts = [...new Set(dataset.gpus.map((g) => g.hostname))];
    const range = { start: sec(dataset.startMs), end: sec(dataset.endMs) };
    const paths = [
      // label_values(DCGM_FI_DEV_FB_FREE, Hostname) and label_values(DCGM_FI_DEV_FB_FREE{Hostname=~"$Hostname"}, gpu)
      `/api/v1/label/Hostname/values?${new URLSearchParams({ 'match[]': 'DCGM_FI_DEV_FB_FREE', ...range }).toString()}`,
      `/api/v1/label/gpu/values?${new URLSearchParams({ 'match[]': `DCGM_FI_DEV_FB_FREE{Hostname=~"(${hosts.join('|')})"}`, ...range }).toString()}`,
      `/api/v1/label/gpu/values?${new URLSearchParams({ 'match[]': `DCGM_FI_DEV_FB_FREE{Hostname=~"${hosts[0]}"}`, ...range }).toString()}`,
      `/api/v1/series?${new URLSearchParams({ 'match[]': 'DCGM_FI_DEV_GPU_TEMP', ...range }).toString()}`,
      `/api/v1/labels?${new URLSearchParams(range).toString()}`,
      `/api/v1/label/__name__/values?${new URLSearchParams(range).toString()}`,
    ];
    const canonical = (data: unknown): string =>
      JSON.stringify(
        Array.isArray(data)
          ? data.map((d) => (typeof d === 'string' ? d : labelsText(d as Record<string, string>))).sort()
          : data,
      );
    const mismatches: string[] = [];
    for (const p of paths) {
      const theirs = await prometheus.get(p);
      const ours = await getJson(`${runtime.address}${p}`);
      const t = theirs.body as { status: string; data: unknown };
      const o = ours.body as { status: string; data: unknown };
      expect(t.status, p).toBe('success');
      expect(canonical(t.data), p).not.toBe('[]');
      if (o.status !== 'success' || canonical(t.data) !== canonical(o.data))
        mismatches.push(`${p}: prometheus ${canonical(t.data)} | ours ${JSON.stringify(o).slice(0, 500)}`);
    }
    if (mismatches.length > 0) console.log(`metadata mismatches:\n${mismatches.join('\n')}`);
    expect(mismatches).toEqual([]);
  });

  it('refuses malformed queries with the errorType Prometheus gives', async () => {
    const mismatches: string[] = [];
    for (const m of malformedQueries(dataset)) {
      const theirs = await prometheus.get(m.path);
      const ours = await getJson(`${runtime.address}${m.path}`);
      const errorType = m.errorType ?? 'bad_data';
      expect(theirs.status, `prometheus on ${m.why}`).toBe(errorType === 'bad_data' ? 400 : 422);
      expect((theirs.body as Body).errorType, `prometheus on ${m.why}`).toBe(errorType);
      for (const line of compare(theirs, ours)) mismatches.push(`${m.why} (${m.path}): ${line}`);
    }
    if (mismatches.length > 0) console.log(`malformed query mismatches:\n${mismatches.join('\n')}`);
    expect(mismatches).toEqual([]);
  });

  it('answers every corpus expression as Prometheus does, instant and range', async () => {
    const plan = corpus.flatMap((entry) => queries(dataset).map((q) => ({ entry, q })));
    const results = await pool(plan, CONCURRENCY, async ({ entry, q }) => {
      const p = path(entry.expr, q);
      const [theirs, ours] = await Promise.all([prometheus.get(p), getJson(`${runtime.address}${p}`)]);
      const ordered = q.kind === 'instant' && /^sort(_desc)?\(/.test(entry.expr);
      return { entry, q, problems: compare(theirs, ours, ordered) };
    });
    const failed = results.filter((r) => r.problems.length > 0);
    const byExpr = new Map<string, typeof failed>();
    for (const f of failed) byExpr.set(f.entry.expr, [...(byExpr.get(f.entry.expr) ?? []), f]);
    const lines: string[] = [];
    for (const [expr, fs] of byExpr) {
      lines.push(
        `\n== ${expr}  [${fs[0]!.entry.group}] ${fs.length}/${queries(dataset).length} queries differ`,
      );
      for (const f of fs) {
        lines.push(`  ${f.q.kind} ${f.q.label}:`);
        for (const p of f.problems.slice(0, 4)) lines.push(`    ${p}`);
        if (f.problems.length > 4) lines.push(`    ... ${f.problems.length - 4} more`);
      }
    }
    const summary = `${byExpr.size} of ${corpus.length} expressions differ (${failed.length} of ${plan.length} queries)`;
    if (failed.length > 0) console.log(`PromQL differential: ${summary}${lines.join('\n')}`);
    const report = process.env.PROMQL_DIFF_REPORT;
    if (report !== undefined && report !== '') {
      const json = failed.map((f) => ({
        expr: f.entry.expr,
        group: f.entry.group,
        query: f.q,
        problems: f.problems,
      }));
      writeFileSync(report, `${JSON.stringify({ summary, mismatches: json }, null, 2)}\n`);
    }
    expect(summary).toBe(`0 of ${corpus.length} expressions differ (0 of ${plan.length} queries)`);
  }, 240_000);
});
