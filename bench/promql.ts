/**
 * PromQL query latency of the project beside Prometheus 2.42 on the same data, in the same run.
 *
 *   npx tsx bench/promql.ts [--runs 3] [--gpus 100] [--out results.json]
 *
 * Data (test/support/promql-data.ts): 100 GPUs (8 per host, 13 hosts) x 10 dcgm-exporter gauges x
 * 241 scrapes (1 hour at 15 s, both ends) = 241,000 samples, no gap, no reset. Prometheus (Debian `prometheus`) gets it through
 * `promtool tsdb create-blocks-from openmetrics` (test/harness/promtool.ts); the project through an
 * embedded runtime (file source -> queue -> collector -> the default embedded store on disk, SQLite), its stored count checked.
 * Both serve over HTTP on 127.0.0.1; one client in this process (`fetch`, one request at a time).
 *
 * Queries, both as GET /api/v1/query_range over the data's hour at step 15 s (241 steps):
 *   a. one GPU's 10 metrics: `{__name__=~"DCGM_.+", Hostname="<host 1>", gpu="0"}` (10 series);
 *   b. the dcgm-exporter dashboard's heaviest expression, its "GPU SM Clocks" panel with every host
 *      and GPU selected: `max(DCGM_FI_DEV_SM_CLOCK{Hostname=~"(...)", gpu=~"(...)"} * 1000000) by
 *      (Hostname, UUID, gpu)` (every series read, a binary operation on each point, a grouping of
 *      100 output series; the other panels do less of each).
 * Each round: 5 warm-up requests, then up to 200 requests within ~3 s (at least 10) per query and
 * server; figures are the median over K rounds of each round's p50 and p99, with the spread, and the
 * ratio of the project's p50/p99 to Prometheus'. Both answers are checked to have the same number of
 * series and points before timing.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/config.js';
import { startEmbedded } from '../src/runtime/embedded.js';
import { createLogger } from '../src/util/logger.js';
import { startBackfilledPrometheus } from '../test/harness/promtool.js';
import { generatePromqlDataset, PROMQL_GAUGES, writeDataset } from '../test/support/promql-data.js';
import { intArg } from './args.js';
import { figure, type Figure } from './figure.js';
import { percentile, round2, timeRound } from './timing.js';

const STEP_S = 15;
const WARMUP = 5;
const MIN_REQUESTS = 10;
const MAX_REQUESTS = 200;
const ROUND_BUDGET_MS = 3_000;
const REQUEST_TIMEOUT_MS = 60_000;

/** One query on one server. */
export interface PromqlServerFigure {
  p50Ms: Figure;
  p99Ms: Figure;
  requestsPerRound: number[];
}

/** One query on both servers. */
export interface PromqlQueryFigure {
  id: string;
  label: string;
  query: string;
  series: number;
  points: number;
  bytes: { ours: number; prometheus: number };
  ours: PromqlServerFigure;
  prometheus: PromqlServerFigure;
  /** ours / Prometheus, of the medians. */
  ratioP50: number;
  ratioP99: number;
}

/** Everything {@link benchPromql} measured. */
export interface PromqlFigures {
  date: string;
  machine: { cpus: number; node: string };
  runs: number;
  data: {
    gpus: number;
    metrics: number;
    samples: number;
    series: number;
    hours: number;
    intervalSec: number;
  };
  load: { prometheusBackfillSec: number; oursIngestSec: number; oursRowsPerSec: number };
  queries: PromqlQueryFigure[];
  loadAverage: number[];
}

type Log = (line: string) => void;

interface Answer {
  ms: number;
  bytes: number;
  series: number;
  points: number;
}

async function request(url: string): Promise<Answer> {
  const started = performance.now();
  const res = await fetch(url, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const text = await res.text();
  const ms = performance.now() - started;
  const body = JSON.parse(text) as {
    status: string;
    error?: string;
    data?: { result: { values: unknown[] }[] };
  };
  if (res.status !== 200 || body.status !== 'success')
    throw new Error(`bench: GET ${url} answered ${res.status}: ${text.slice(0, 300)}`);
  const result = body.data?.result ?? [];
  return {
    ms,
    bytes: text.length,
    series: result.length,
    points: result.reduce((n, s) => n + s.values.length, 0),
  };
}

const timeQuery = (url: string): Promise<number[]> =>
  timeRound(() => request(url), {
    warmup: WARMUP,
    minRequests: MIN_REQUESTS,
    maxRequests: MAX_REQUESTS,
    budgetMs: ROUND_BUDGET_MS,
  });

/**
 * Generate the data, load it into a backfilled Prometheus and an embedded runtime, and time the two
 * queries of this module's header on both, `runs` rounds each. Everything runs on 127.0.0.1 in
 * temporary directories, removed before the promise settles.
 */
export async function benchPromql(opts: { runs: number; gpus?: number; log?: Log }): Promise<PromqlFigures> {
  const log = opts.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const gpus = opts.gpus ?? 100;
  const perHost = 8;
  const gpusPerHost = Array.from({ length: Math.ceil(gpus / perHost) }, (_, h) =>
    Math.min(perHost, gpus - h * perHost),
  );
  const metrics = PROMQL_GAUGES.slice(0, 10);
  const hourMs = 3_600_000;
  // One hour of data ending on the last whole minute at least 10 minutes ago.
  const startMs = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000 - hourMs;
  const dataset = generatePromqlDataset({
    startMs,
    durationMs: hourMs + STEP_S * 1000,
    intervalMs: STEP_S * 1000,
    gpusPerHost,
    metrics,
    gap: false,
    reset: false,
    cluster: 'bench',
    seed: 7,
  });
  const dir = await mkdtemp(join(tmpdir(), 'nexus-bench-promql-'));
  let prometheus: Awaited<ReturnType<typeof startBackfilledPrometheus>> | undefined;
  let runtime: Awaited<ReturnType<typeof startEmbedded>> | undefined;
  try {
    log(`bench promql: ${dataset.sampleCount.toLocaleString('en-US')} samples, writing both texts ...`);
    await writeDataset(dataset, 'openmetrics', join(dir, 'data.om'));
    await writeDataset(dataset, 'text', join(dir, 'data.prom'));

    log('bench promql: promtool backfill + Prometheus ...');
    let started = performance.now();
    prometheus = await startBackfilledPrometheus(join(dir, 'data.om'));
    const prometheusBackfillSec = round2((performance.now() - started) / 1000);

    log('bench promql: ingest into the embedded runtime (SQLite on disk) ...');
    runtime = await startEmbedded({
      config: loadConfig(
        {},
        {
          DATA_DIR: join(dir, 'nexus'),
          PORT: 0,
          HOST: '127.0.0.1',
          LOG_LEVEL: 'silent',
          CLUSTER_ID: 'bench',
          EMBEDDED_STORE: 'sqlite',
        },
      ),
      logger: createLogger('silent'),
    });
    started = performance.now();
    await runtime.ingest({ spec: join(dir, 'data.prom') });
    const oursIngestSec = round2((performance.now() - started) / 1000);
    const stored = await runtime.store.countSamples();
    if (stored !== dataset.sampleCount)
      throw new Error(`bench promql: the project stored ${stored} samples, expected ${dataset.sampleCount}`);

    const hosts = [...new Set(dataset.gpus.map((g) => g.hostname))];
    const gpuIds = [...new Set(dataset.gpus.map((g) => g.gpu))].sort();
    const queries = [
      {
        id: 'one-gpu',
        label: "one GPU's 10 metrics, 1 h",
        query: `{__name__=~"DCGM_.+", Hostname="${hosts[0]}", gpu="0"}`,
      },
      {
        id: 'dashboard-sm-clocks',
        label: 'dashboard "GPU SM Clocks", all GPUs, 1 h',
        query: `max(DCGM_FI_DEV_SM_CLOCK{Hostname=~"(${hosts.join('|')})", gpu=~"(${gpuIds.join('|')})"} * 1000000) by (Hostname, UUID, gpu)`,
      },
    ];
    const params = (query: string): string =>
      new URLSearchParams({
        query,
        start: String(dataset.startMs / 1000),
        end: String(dataset.endMs / 1000),
        step: String(STEP_S),
      }).toString();
    const origins = { ours: runtime.address!, prometheus: prometheus.url };

    const out: PromqlQueryFigure[] = [];
    for (const q of queries) {
      const path = `/api/v1/query_range?${params(q.query)}`;
      const ours = await request(origins.ours + path);
      const theirs = await request(origins.prometheus + path);
      if (ours.series !== theirs.series || ours.points !== theirs.points)
        throw new Error(
          `bench promql: ${q.id}: the project answered ${ours.series} series / ${ours.points} points, Prometheus ${theirs.series} / ${theirs.points}`,
        );
      const rounds = { ours: [] as number[][], prometheus: [] as number[][] };
      for (let r = 0; r < opts.runs; r++) {
        log(`bench promql: ${q.id}, round ${r + 1}/${opts.runs} ...`);
        rounds.ours.push(await timeQuery(origins.ours + path));
        rounds.prometheus.push(await timeQuery(origins.prometheus + path));
      }
      const server = (lat: number[][]): PromqlServerFigure => ({
        p50Ms: figure(lat.map((l) => round2(percentile(l, 50)))),
        p99Ms: figure(lat.map((l) => round2(percentile(l, 99)))),
        requestsPerRound: lat.map((l) => l.length),
      });
      const o = server(rounds.ours);
      const p = server(rounds.prometheus);
      out.push({
        ...q,
        series: theirs.series,
        points: theirs.points,
        bytes: { ours: ours.bytes, prometheus: theirs.bytes },
        ours: o,
        prometheus: p,
        ratioP50: round2(o.p50Ms.median / p.p50Ms.median),
        ratioP99: round2(o.p99Ms.median / p.p99Ms.median),
      });
    }
    return {
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, node: process.version },
      runs: opts.runs,
      data: {
        gpus: dataset.gpus.length,
        metrics: metrics.length,
        samples: dataset.sampleCount,
        series: dataset.series.length,
        hours: 1,
        intervalSec: STEP_S,
      },
      load: {
        prometheusBackfillSec,
        oursIngestSec,
        oursRowsPerSec: Math.round(dataset.sampleCount / oursIngestSec),
      },
      queries: out,
      loadAverage: loadavg().map(round2),
    };
  } finally {
    await runtime?.close();
    await prometheus?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (f: Figure): string => `${f.median} (${f.min}..${f.max})`;

/** The figures as a plain-text table. */
export function formatPromqlFigures(f: PromqlFigures): string {
  const rows = [
    [
      'query_range, step 15 s',
      'server',
      'series',
      'points',
      'bytes',
      'p50 ms',
      'p99 ms',
      'ours / Prometheus',
    ],
  ];
  for (const q of f.queries) {
    rows.push([
      q.label,
      'nexus-telemetry',
      String(q.series),
      String(q.points),
      String(q.bytes.ours),
      fmt(q.ours.p50Ms),
      fmt(q.ours.p99Ms),
      `p50 ${q.ratioP50}x, p99 ${q.ratioP99}x`,
    ]);
    rows.push([
      '',
      'Prometheus 2.42',
      '',
      '',
      String(q.bytes.prometheus),
      fmt(q.prometheus.p50Ms),
      fmt(q.prometheus.p99Ms),
      '',
    ]);
  }
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return [
    `PromQL latency, nexus-telemetry (embedded, SQLite on disk) beside Prometheus 2.42 (backfilled TSDB), same data, same run: ` +
      `${f.data.gpus} GPUs x ${f.data.metrics} metrics x ${f.data.hours} h at ${f.data.intervalSec} s = ${f.data.samples.toLocaleString('en-US')} samples; ` +
      `median of ${f.runs} rounds (min..max); ${f.machine.cpus} cores, node ${f.machine.node}, load ${f.loadAverage.join('/')}`,
    `load: promtool backfill + Prometheus start ${f.load.prometheusBackfillSec} s; project ingest ${f.load.oursIngestSec} s (${f.load.oursRowsPerSec.toLocaleString('en-US')} rows/s)`,
    ...rows.map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    ),
  ].join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv.indexOf('--out');
  const main = async (): Promise<void> => {
    const figures = await benchPromql({ runs: intArg('--runs', 3), gpus: intArg('--gpus', 100) });
    console.log(`\n${formatPromqlFigures(figures)}`);
    if (out !== -1 && process.argv[out + 1])
      writeFileSync(process.argv[out + 1]!, `${JSON.stringify(figures, null, 2)}\n`);
  };
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
