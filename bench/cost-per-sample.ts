/**
 * Cost per sample beside Prometheus (issue 18's table), same data, same run:
 *
 *   npx tsx bench/cost-per-sample.ts [--gpus 1000] [--scrapes 100] [--runs 3] [--store sqlite|pglite]
 *     [--out results.json]
 *
 * Data (test/support/promql-data.ts): `--gpus` GPUs (8 per host) x 10 dcgm-exporter gauges x
 * `--scrapes` scrapes 30 s apart (default 1,000 x 10 x 100 = 1,000,000 samples, 50 minutes).
 * - ingest: `promtool tsdb create-blocks-from openmetrics` (Prometheus' own bulk path) against the
 *   project's embedded runtime reading the same samples as exposition text (file source -> queue
 *   -> collector -> the embedded sample store on disk: SQLite, or PGlite with `--store pglite`),
 *   samples per second of each; the project's stored count checked;
 * - disk: bytes of the block directory against bytes of the store's data directory once the
 *   runtime is closed, per sample;
 * - one GPU's 10 metrics over the data's hour, raw: Prometheus `{Hostname=.., gpu="0"}[1h]` (an
 *   instant query returning every raw point) against the project's REST telemetry route
 *   (`limit=10000`), each answer checked to hold every point; p50/p99 and response bytes; the
 *   same in the compact form (`format=compact`: labels once, then times and values, the shape of
 *   Prometheus' matrix), and both again once the data is compacted into chunks (stores with
 *   `compact()`: SQLite and PGlite);
 * - latest values of one GPU: Prometheus' instant query `{Hostname=.., gpu="0"}` against the
 *   project's `GET .../gpus/0` (its `metrics` are the latest values);
 * - the bench process's peak RSS during the project's ingest (the embedded runtime runs in it).
 * Latency rounds: 5 warm-up requests, then 10-200 requests within ~3 s, one at a time (bench/timing.ts);
 * figures are medians over `--runs` rounds. Prints met/missed for issue 18's first targets.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig } from '../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../src/runtime/embedded.js';
import { createLogger } from '../src/util/logger.js';
import { startPrometheus, type PrometheusHandle } from '../test/harness/prometheus.js';
import { createBlocks } from '../test/harness/promtool.js';
import { generatePromqlDataset, PROMQL_GAUGES, writeDataset } from '../test/support/promql-data.js';
import { intArg } from './args.js';
import { figure, type Figure } from './figure.js';
import { percentile, round2, timeRound } from './timing.js';

const INTERVAL_MS = 30_000;
const METRICS = 10;

/** p50/p99 of one query on one server, and its answer's size. */
export interface LatencyFigure {
  p50Ms: Figure;
  p99Ms: Figure;
  bytes: number;
}

/** Everything {@link benchCostPerSample} measured. */
export interface CostFigures {
  date: string;
  /** The embedded sample store measured (`EMBEDDED_STORE`). */
  store: EmbeddedStore;
  machine: { cpus: number; node: string };
  runs: number;
  data: { gpus: number; metrics: number; scrapes: number; samples: number; intervalSec: number };
  ingest: { prometheusSamplesPerSec: number; oursSamplesPerSec: number; ratio: number };
  disk: {
    prometheusBytes: number;
    oursBytes: number;
    prometheusBytesPerSample: number;
    oursBytesPerSample: number;
    ratio: number;
    /** Bytes of an empty store's data directory (catalogs, a recycled write-ahead log), same run. */
    emptyStoreBytes: number;
    /** (ours - empty store) / samples: what the samples themselves cost. */
    oursAddedBytesPerSample: number;
    /** oursAddedBytesPerSample against Prometheus' bytes per sample. */
    addedRatio: number;
    /** Bytes of the empty store's write-ahead log. */
    emptyStoreWalBytes: number;
    /**
     * As oursAddedBytesPerSample without the write-ahead log on either side: PGlite keeps one or
     * two 16 MB segments whatever the data (bounded by max_wal_size), so what the samples add is
     * the rest.
     */
    oursDataBytesPerSample: number;
    dataRatio: number;
  };
  oneGpuHour: { points: number; ours: LatencyFigure; prometheus: LatencyFigure; ratioP50: number };
  /** The same hour in the compact form (`format=compact`: labels once, then time/value arrays). */
  oneGpuHourCompactForm: { ours: LatencyFigure; ratioP50: number };
  /** The same hour once it is past the hot window and compacted into chunks (stores with compact()). */
  oneGpuHourCompacted?: { ours: LatencyFigure; ratioP50: number };
  /** The same compacted hour in the compact form. */
  oneGpuHourCompactedCompactForm?: { ours: LatencyFigure; ratioP50: number };
  /** The compaction pass run before the disk was measured (the hot window passed). */
  compaction?: { seconds: number; windows: number; samples: number };
  /** Where the project's bytes are: PostgreSQL's write-ahead log, and the relations by table. */
  diskBreakdown: { walBytes: number; relations: Record<string, number> };
  latest: { ours: LatencyFigure; prometheus: LatencyFigure; ratioP50: number };
  oursPeakRssMiB: number;
  loadAverage: number[];
}

type Log = (line: string) => void;

/** The embedded sample stores `start` can run on. */
export type EmbeddedStore = 'pglite' | 'sqlite';

/** Total size of the files under `dir`. */
async function directoryBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

/** GET `url`, check the status, and hand the parsed body to `check`; the text's length. */
async function getChecked(url: string, check: (body: unknown) => void): Promise<number> {
  const response = await fetch(url, { signal: AbortSignal.timeout(60_000) });
  const text = await response.text();
  if (response.status !== 200)
    throw new Error(`bench: GET ${url} answered ${response.status}: ${text.slice(0, 300)}`);
  check(JSON.parse(text));
  return text.length;
}

/** Rounds of `url` on one server: the p50/p99 medians over `runs` rounds, and the answer's bytes. */
async function latency(url: string, runs: number, check: (body: unknown) => void): Promise<LatencyFigure> {
  // Untimed, and tried twice: after a long compaction (PGlite runs on this thread) the first request
  // can take a keep-alive socket the server is closing at that moment (ECONNRESET).
  const bytes = await getChecked(url, check).catch((error: unknown) => {
    if ((error as { cause?: { code?: string } }).cause?.code !== 'ECONNRESET') throw error;
    return getChecked(url, check);
  });
  const rounds: number[][] = [];
  for (let r = 0; r < runs; r++) rounds.push(await timeRound(() => getChecked(url, () => undefined)));
  return {
    p50Ms: figure(rounds.map((l) => round2(percentile(l, 50)))),
    p99Ms: figure(rounds.map((l) => round2(percentile(l, 99)))),
    bytes,
  };
}

/** Points of a Prometheus matrix answer. */
function matrixPoints(body: unknown): number {
  const result = (body as { data: { result: { values?: unknown[] }[] } }).data.result;
  return result.reduce((n, s) => n + (s.values?.length ?? 0), 0);
}

/**
 * Generate the data, load it into Prometheus (promtool backfill) and an embedded runtime, and measure
 * the table of this module's header. Everything runs on 127.0.0.1 in temporary directories, removed
 * before the promise settles.
 */
export async function benchCostPerSample(opts: {
  runs: number;
  gpus?: number;
  scrapes?: number;
  /** The embedded sample store (default sqlite, `start`'s). */
  store?: EmbeddedStore;
  log?: Log;
}): Promise<CostFigures> {
  const store = opts.store ?? 'sqlite';
  const env = { PORT: 0, HOST: '127.0.0.1', LOG_LEVEL: 'silent', CLUSTER_ID: 'bench', EMBEDDED_STORE: store };
  const log = opts.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const gpus = opts.gpus ?? 1000;
  const scrapes = opts.scrapes ?? 100;
  const perHost = 8;
  const gpusPerHost = Array.from({ length: Math.ceil(gpus / perHost) }, (_, h) =>
    Math.min(perHost, gpus - h * perHost),
  );
  // The data ends on the last whole minute at least 10 minutes ago (Prometheus accepts it as old).
  const endMs = Math.floor(Date.now() / 60_000) * 60_000 - 10 * 60_000;
  const startMs = endMs - scrapes * INTERVAL_MS;
  let dataset: ReturnType<typeof generatePromqlDataset> | undefined = generatePromqlDataset({
    startMs,
    durationMs: scrapes * INTERVAL_MS,
    intervalMs: INTERVAL_MS,
    gpusPerHost,
    metrics: PROMQL_GAUGES.slice(0, METRICS),
    gap: false,
    reset: false,
    cluster: 'bench',
    seed: 11,
  });
  const samples = dataset.sampleCount;
  const lastMs = dataset.endMs;
  const host = dataset.gpus[0]!.hostname;
  const dir = await mkdtemp(join(tmpdir(), 'nexus-bench-cost-'));
  let prometheus: PrometheusHandle | undefined;
  let runtime: EmbeddedRuntime | undefined;
  try {
    log(`bench cost: ${samples.toLocaleString('en-US')} samples, writing both texts ...`);
    await writeDataset(dataset, 'openmetrics', join(dir, 'data.om'));
    await writeDataset(dataset, 'text', join(dir, 'data.prom'));
    dataset = undefined; // the samples now live in the files only (keeps the RSS figure honest)

    log('bench cost: promtool backfill ...');
    const blocks = join(dir, 'prometheus');
    let started = performance.now();
    await createBlocks(join(dir, 'data.om'), blocks);
    const prometheusSec = (performance.now() - started) / 1000;
    const prometheusBytes = await directoryBytes(blocks);
    prometheus = await startPrometheus({
      config: 'global:\n  evaluation_interval: 1m\n',
      storageDir: blocks,
      readyTimeoutMs: 60_000,
      extraArgs: ['--storage.tsdb.retention.time=100y'],
    });

    // What an empty store takes (catalogs of two databases, the write-ahead log PGlite keeps
    // recycled), so that the bytes the samples add can be told from that fixed floor.
    const emptyDir = join(dir, 'empty');
    const empty = await startEmbedded({
      config: loadConfig({}, { ...env, DATA_DIR: emptyDir }),
      logger: createLogger('silent'),
    });
    await empty.close();
    const emptyStoreBytes = await directoryBytes(emptyDir);
    const emptyStoreWalBytes = await directoryBytes(join(emptyDir, 'pglite', 'pg_wal')).catch(() => 0);

    log(`bench cost: ingest into the embedded runtime (${store} on disk) ...`);
    const dataDir = join(dir, 'nexus');
    runtime = await startEmbedded({
      config: loadConfig({}, { ...env, DATA_DIR: dataDir }),
      logger: createLogger('silent'),
    });
    let peakRss = process.memoryUsage().rss;
    const rssTimer = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
    started = performance.now();
    try {
      await runtime.ingest({ spec: join(dir, 'data.prom') });
    } finally {
      clearInterval(rssTimer);
    }
    const oursSec = (performance.now() - started) / 1000;
    const stored = await runtime.store.countSamples();
    if (stored !== samples)
      throw new Error(`bench cost: the project stored ${stored} samples, expected ${samples}`);

    const selector = `{Hostname="${host}", gpu="0"}`;
    const prom = (query: string): string =>
      `${prometheus!.url}/api/v1/query?${new URLSearchParams({ query, time: String(lastMs / 1000) })}`;
    const gpuPath = `${runtime.address}/api/v1/clusters/bench/hosts/${encodeURIComponent(host)}/gpus/0`;
    // Both ends of the hour are inclusive (Prometheus 2.42 range selectors too): 121 scrapes at most.
    const expected = Math.min(scrapes, 121) * METRICS;

    log('bench cost: one GPU, one hour, raw ...');
    const hourQuery = new URLSearchParams({
      start_time: new Date(lastMs - 3_600_000).toISOString(),
      end_time: new Date(lastMs).toISOString(),
      limit: '10000',
      order: 'asc',
    });
    const oursHour = await latency(`${gpuPath}/telemetry?${hourQuery}`, opts.runs, (body) => {
      const items = (body as { data?: unknown[] }).data ?? (body as unknown[]);
      if (!Array.isArray(items) || items.length !== expected)
        throw new Error(
          `bench cost: the project's hour answered ${Array.isArray(items) ? items.length : '?'} points, expected ${expected}`,
        );
    });
    const compactPoints = (body: unknown): number =>
      ((body as { series?: { t: unknown[] }[] }).series ?? []).reduce((n, x) => n + x.t.length, 0);
    const oursHourCompact = await latency(
      `${gpuPath}/telemetry?${hourQuery}&format=compact`,
      opts.runs,
      (body) => {
        if (compactPoints(body) !== expected)
          throw new Error(
            `bench cost: the compact hour answered ${compactPoints(body)} points, expected ${expected}`,
          );
      },
    );
    const theirHour = await latency(prom(`${selector}[1h]`), opts.runs, (body) => {
      if (matrixPoints(body) !== expected)
        throw new Error(
          `bench cost: Prometheus' hour answered ${matrixPoints(body)} points, expected ${expected}`,
        );
    });

    log('bench cost: latest values of one GPU ...');
    const oursLatest = await latency(gpuPath, opts.runs, (body) => {
      const metrics = (body as { metrics?: Record<string, unknown> }).metrics ?? {};
      if (Object.keys(metrics).length !== METRICS)
        throw new Error(`bench cost: the project's GPU has ${Object.keys(metrics).length} latest values`);
    });
    const theirLatest = await latency(prom(selector), opts.runs, (body) => {
      const n = (body as { data: { result: unknown[] } }).data.result.length;
      if (n !== METRICS) throw new Error(`bench cost: Prometheus' latest answered ${n} series`);
    });

    // Disk is measured after the hot window: the data's windows compacted as the embedded
    // runtime's housekeeping would once their day is over (nowMs moved on by 30 hours: the day
    // partition goes too). A store without compact() keeps its rows as they are.
    let compaction: CostFigures['compaction'];
    let oursHourCompacted: LatencyFigure | undefined;
    let oursHourCompactedCompact: LatencyFigure | undefined;
    let relations: Record<string, number> = {};
    if (runtime.store.compact !== undefined) {
      log('bench cost: compaction past the hot window, then the same hour from chunks ...');
      started = performance.now();
      const compacted = await runtime.store.compact!({
        hotMs: 2 * 3_600_000,
        nowMs: lastMs + 30 * 3_600_000,
      });
      compaction = {
        seconds: round2((performance.now() - started) / 1000),
        windows: compacted.windows,
        samples: compacted.samples,
      };
      if (compacted.samples !== samples || (await runtime.store.countSamples()) !== samples)
        throw new Error(`bench cost: compaction kept ${compacted.samples} of ${samples} samples`);
      oursHourCompacted = await latency(`${gpuPath}/telemetry?${hourQuery}`, opts.runs, (body) => {
        const items = (body as { data?: unknown[] }).data ?? (body as unknown[]);
        if (!Array.isArray(items) || items.length !== expected)
          throw new Error(
            `bench cost: the compacted hour answered ${Array.isArray(items) ? items.length : '?'} points`,
          );
      });
      oursHourCompactedCompact = await latency(
        `${gpuPath}/telemetry?${hourQuery}&format=compact`,
        opts.runs,
        (body) => {
          if (compactPoints(body) !== expected)
            throw new Error(`bench cost: the compacted compact hour answered ${compactPoints(body)} points`);
        },
      );
      const sqlStore = runtime.store as unknown as { withSql?: unknown };
      if (typeof sqlStore.withSql === 'function')
        relations = await (
          runtime.store as unknown as {
            withSql<T>(
              op: string,
              fn: (db: { query<R>(t: string): Promise<{ rows: R[] }> }) => Promise<T>,
            ): Promise<T>;
          }
        ).withSql('bench', async (db) => {
          const { rows } = await db.query<{ name: string; bytes: number }>(
            `SELECT coalesce(i.inhparent::regclass::text, c.relname) AS name, sum(pg_total_relation_size(c.oid))::float8 AS bytes
FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid
WHERE c.relkind = 'r' AND c.relnamespace = 'public'::regnamespace
GROUP BY 1 ORDER BY 2 DESC`,
          );
          return Object.fromEntries(rows.filter((r) => r.bytes > 0).map((r) => [r.name, r.bytes]));
        });
    }
    await runtime.close();
    runtime = undefined;
    const oursBytes = await directoryBytes(dataDir);
    const walBytes = await directoryBytes(join(dataDir, 'pglite', 'pg_wal')).catch(() => 0);
    const prometheusPerSec = samples / prometheusSec;
    const oursPerSec = samples / oursSec;
    return {
      date: new Date().toISOString(),
      store,
      machine: { cpus: cpus().length, node: process.version },
      runs: opts.runs,
      data: { gpus, metrics: METRICS, scrapes, samples, intervalSec: INTERVAL_MS / 1000 },
      ingest: {
        prometheusSamplesPerSec: Math.round(prometheusPerSec),
        oursSamplesPerSec: Math.round(oursPerSec),
        ratio: round2(oursPerSec / prometheusPerSec),
      },
      disk: {
        prometheusBytes,
        oursBytes,
        prometheusBytesPerSample: round2(prometheusBytes / samples),
        oursBytesPerSample: round2(oursBytes / samples),
        ratio: round2(oursBytes / prometheusBytes),
        emptyStoreBytes,
        oursAddedBytesPerSample: round2((oursBytes - emptyStoreBytes) / samples),
        addedRatio: round2((oursBytes - emptyStoreBytes) / prometheusBytes),
        emptyStoreWalBytes,
        oursDataBytesPerSample: round2(
          (oursBytes - walBytes - (emptyStoreBytes - emptyStoreWalBytes)) / samples,
        ),
        dataRatio: round2((oursBytes - walBytes - (emptyStoreBytes - emptyStoreWalBytes)) / prometheusBytes),
      },
      oneGpuHour: {
        points: expected,
        ours: oursHour,
        prometheus: theirHour,
        ratioP50: round2(oursHour.p50Ms.median / theirHour.p50Ms.median),
      },
      oneGpuHourCompactForm: {
        ours: oursHourCompact,
        ratioP50: round2(oursHourCompact.p50Ms.median / theirHour.p50Ms.median),
      },
      ...(oursHourCompacted === undefined || oursHourCompactedCompact === undefined
        ? {}
        : {
            oneGpuHourCompacted: {
              ours: oursHourCompacted,
              ratioP50: round2(oursHourCompacted.p50Ms.median / theirHour.p50Ms.median),
            },
            oneGpuHourCompactedCompactForm: {
              ours: oursHourCompactedCompact,
              ratioP50: round2(oursHourCompactedCompact.p50Ms.median / theirHour.p50Ms.median),
            },
          }),
      compaction,
      diskBreakdown: { walBytes, relations },
      latest: {
        ours: oursLatest,
        prometheus: theirLatest,
        ratioP50: round2(oursLatest.p50Ms.median / theirLatest.p50Ms.median),
      },
      oursPeakRssMiB: Math.round(peakRss / 2 ** 20),
      loadAverage: loadavg().map(round2),
    };
  } finally {
    await runtime?.close();
    await prometheus?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

const fmt = (f: Figure): string => `${f.median} (${f.min}..${f.max})`;
const met = (ok: boolean): string => (ok ? 'met' : 'MISSED');

/** The figures as issue 18's table, with met/missed for its first targets. */
export function formatCostFigures(f: CostFigures): string {
  const n = (v: number): string => v.toLocaleString('en-US');
  const rows = [
    ['', 'Prometheus 2.42', `nexus-telemetry (embedded, ${f.store})`, 'ratio', 'target (issue 18)'],
    [
      'ingest, samples/s',
      `${n(f.ingest.prometheusSamplesPerSec)} (promtool backfill)`,
      n(f.ingest.oursSamplesPerSec),
      `${f.ingest.ratio}x`,
      `>= 0.5x: ${met(f.ingest.ratio >= 0.5)}`,
    ],
    [
      'disk, bytes/sample',
      `${f.disk.prometheusBytesPerSample} (${n(f.disk.prometheusBytes)} B)`,
      `${f.disk.oursBytesPerSample} (${n(f.disk.oursBytes)} B)`,
      `${f.disk.ratio}x`,
      `<= 4x: ${met(f.disk.ratio <= 4)}`,
    ],
    [
      'disk above an empty store, bytes/sample',
      '',
      `${f.disk.oursAddedBytesPerSample} (empty store ${n(f.disk.emptyStoreBytes)} B)`,
      `${f.disk.addedRatio}x`,
      `<= 4x: ${met(f.disk.addedRatio <= 4)}`,
    ],
    [
      'the same without the write-ahead log (16-32 MiB)',
      '',
      String(f.disk.oursDataBytesPerSample),
      `${f.disk.dataRatio}x`,
      `<= 4x: ${met(f.disk.dataRatio <= 4)}`,
    ],
    [
      `one GPU, ${METRICS} metrics, 1 h raw (${n(f.oneGpuHour.points)} points), p50 / p99 ms`,
      `${fmt(f.oneGpuHour.prometheus.p50Ms)} / ${fmt(f.oneGpuHour.prometheus.p99Ms)}, ${n(f.oneGpuHour.prometheus.bytes)} B`,
      `${fmt(f.oneGpuHour.ours.p50Ms)} / ${fmt(f.oneGpuHour.ours.p99Ms)}, ${n(f.oneGpuHour.ours.bytes)} B`,
      `p50 ${f.oneGpuHour.ratioP50}x`,
      `p50 <= Prometheus': ${met(f.oneGpuHour.ratioP50 <= 1)}`,
    ],
    [
      'the same hour, format=compact, p50 / p99 ms',
      '',
      `${fmt(f.oneGpuHourCompactForm.ours.p50Ms)} / ${fmt(f.oneGpuHourCompactForm.ours.p99Ms)}, ${n(f.oneGpuHourCompactForm.ours.bytes)} B`,
      `p50 ${f.oneGpuHourCompactForm.ratioP50}x`,
      `p50 <= Prometheus': ${met(f.oneGpuHourCompactForm.ratioP50 <= 1)}; p99 <= 20 ms: ${met(f.oneGpuHourCompactForm.ours.p99Ms.median <= 20)}`,
    ],
    ...(f.oneGpuHourCompacted === undefined || f.oneGpuHourCompactedCompactForm === undefined
      ? []
      : [
          [
            `the same hour after compaction (chunks), p50 / p99 ms`,
            '',
            `${fmt(f.oneGpuHourCompacted.ours.p50Ms)} / ${fmt(f.oneGpuHourCompacted.ours.p99Ms)}`,
            `p50 ${f.oneGpuHourCompacted.ratioP50}x`,
            `p50 <= Prometheus': ${met(f.oneGpuHourCompacted.ratioP50 <= 1)}`,
          ],
          [
            `the same hour after compaction, format=compact, p50 / p99 ms`,
            '',
            `${fmt(f.oneGpuHourCompactedCompactForm.ours.p50Ms)} / ${fmt(f.oneGpuHourCompactedCompactForm.ours.p99Ms)}`,
            `p50 ${f.oneGpuHourCompactedCompactForm.ratioP50}x`,
            `p50 <= Prometheus': ${met(f.oneGpuHourCompactedCompactForm.ratioP50 <= 1)}`,
          ],
        ]),
    [
      'latest values of one GPU, p50 / p99 ms',
      `${fmt(f.latest.prometheus.p50Ms)} / ${fmt(f.latest.prometheus.p99Ms)}`,
      `${fmt(f.latest.ours.p50Ms)} / ${fmt(f.latest.ours.p99Ms)}`,
      `p50 ${f.latest.ratioP50}x`,
      '',
    ],
    ['bench process peak RSS while ingesting, MiB', '', String(f.oursPeakRssMiB), '', ''],
  ];
  const mb = (b: number): string => `${(b / 2 ** 20).toFixed(1)} MiB`;
  const breakdown =
    (f.compaction === undefined
      ? 'disk (no compaction: the store keeps rows): '
      : `disk after compaction (${f.compaction.windows} windows, ${n(f.compaction.samples)} samples, ${f.compaction.seconds} s): `) +
    `write-ahead log ${mb(f.diskBreakdown.walBytes)}; ` +
    Object.entries(f.diskBreakdown.relations)
      .slice(0, 8)
      .map(([name, bytes]) => `${name} ${mb(bytes)}`)
      .join(', ');
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return [
    `Cost per sample beside Prometheus, same data, same run: ${f.data.gpus} GPUs x ${f.data.metrics} metrics x ` +
      `${f.data.scrapes} scrapes at ${f.data.intervalSec} s = ${n(f.data.samples)} samples; latency medians of ` +
      `${f.runs} rounds (min..max); ${f.machine.cpus} cores, node ${f.machine.node}, load ${f.loadAverage.join('/')}`,
    ...rows.map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    ),
    breakdown,
  ].join('\n');
}

/** `--store sqlite|pglite` (default sqlite, as `start`'s on a new data directory). */
function storeArg(): EmbeddedStore {
  const i = process.argv.indexOf('--store');
  const value = i === -1 ? 'sqlite' : process.argv[i + 1];
  if (value !== 'pglite' && value !== 'sqlite')
    throw new Error(`--store must be pglite or sqlite, got ${value}`);
  return value;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv.indexOf('--out');
  const main = async (): Promise<void> => {
    const figures = await benchCostPerSample({
      runs: intArg('--runs', 3),
      gpus: intArg('--gpus', 1000),
      scrapes: intArg('--scrapes', 100),
      store: storeArg(),
    });
    console.log(`\n${formatCostFigures(figures)}`);
    if (out !== -1 && process.argv[out + 1])
      writeFileSync(process.argv[out + 1]!, `${JSON.stringify(figures, null, 2)}\n`);
  };
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
