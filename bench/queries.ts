/**
 * REST query latency at 1M and 10M stored samples in PostgreSQL (p50/p99, median of K rounds).
 *
 *   npx tsx bench/queries.ts [--sizes 1000000,10000000] [--runs 3] [--out results.json]
 *
 * Per size: a fresh PostgreSQL 15 (test/harness/postgres.ts, 127.0.0.1, temp dir), the store's
 * migrations, the data below, then `nexus-telemetry api --traditional` as a separate process (the
 * real CLI, compiled: bench/build.ts; hierarchy mirrored from PostgreSQL) and a client in this process (`fetch`,
 * one request at a time: latency, not throughput). T_END is 00:00:00Z of the day the bench runs,
 * the GPU is `sim-dgx1-hgpu-001` GPU 0, the cluster `bench`; the exact URLs:
 *
 *   1. latest 10 samples: GET /api/v1/clusters/bench/hosts/sim-dgx1-hgpu-001/gpus/0/telemetry?limit=10
 *   2. one hour, raw:     GET .../gpus/0/telemetry?start_time={T_END-1h}&end_time={T_END}&resolution=raw&limit=10000
 *   3. 30 days, auto:     GET .../gpus/0/telemetry?start_time={T_END-30d}&end_time={T_END}&resolution=auto&limit=10000
 *                         (span > 7 days: served by the 1-hour rollups, checked through `x-resolution: 1h`)
 *   4. cluster view:      GET /api/v1/clusters/bench
 *
 * Every query covers all 10 metrics of the GPU: (2) returns 121 scrapes x 10 = 1,210 samples,
 * (3) 721 hourly buckets x 10 = 7,210 items. Each round sends up to 200 sequential requests per query
 * (for at most ~3 s, but at least 5), after a warm-up of up to 20 (at most ~2 s); figures are the median of the
 * rounds' p50 and p99 with their spread (min..max). The SQL of (1)-(3) (built by the store's own
 * `buildSampleQuery`) and of the mirror's `latestSamples` is then run under EXPLAIN ANALYZE.
 *
 * Data shape (DCGM-like, dcgm-exporter's default 30 s scrape interval): 125 hosts x 8 GPUs x 10
 * metrics = 10,000 series, from the project's generator. Every GPU has the newest W scrapes up to
 * T_END; the queried GPU has H >= 30 days + 1 hour of scrapes, so the 30-day query is real and a
 * one-hour window holds 120 scrapes per metric. W and H are chosen so the total is exactly the size:
 * 10 x (999 W + H) samples (1M: W = 13, H = 87,013; 10M: W = 914, H = 86,914). Such a store is one
 * with RETENTION_RAW >= 31 days (the API process runs no retention).
 *
 * Loading: the store's own write path (SqlSampleStore.writeBatch) reaches ~65-71k rows/s with
 * 100k-290k-row batches here (measured while writing this bench), so 10M rows would take minutes.
 * Instead:
 *   - the newest scrape (T_END, 10,000 samples) goes through `store.writeBatch`: it creates the
 *     10,000 series rows (ids, series keys, labels) exactly as a collector does, plus its samples
 *     and rollup buckets, in today's partitions (made by the migration);
 *   - every earlier day is bulk loaded the way `nexus_ensure_partitions` makes a partition (CREATE
 *     TABLE .. (LIKE parent INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor), fill,
 *     ALTER TABLE .. ATTACH PARTITION), filled by binary COPY: raw rows encoded by the store's
 *     `encodeSamplesCopy`, in scrape order (time-major, rows within a scrape in the pipeline's
 *     metric/host/GPU order, as the collector appends them), and the 1m/1h rollup rows of exactly
 *     those samples, folded as the store's rollup flush folds them (min, max, sum in time order,
 *     count, value of the newest sample; in typed arrays, as JS maps cost ~1 us per sample), whole
 *     UTC hours at a time (buckets never straddle hours). ATTACH then builds the indexes by sort
 *     instead of row by row;
 *   - VACUUM (ANALYZE), as autovacuum would do on its own (and so it does not start mid-measurement).
 * Checked before measuring: the sample count, rollup counts (sum of `count` in both rollups equals
 * the sample count), the rollups of two GPUs for one day against an aggregate of their raw samples,
 * the loaded partitions' indexes/constraints/fillfactor against a partition the migration made, and
 * through the API: 10 samples from (1), 1,210 raw samples from (2), 7,210 `1h` items from (3), 125
 * hosts / 1,000 GPUs in (4).
 */
import { intListArg } from './args.js';
import { finished } from 'node:stream/promises';
import { writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { pathToFileURL } from 'node:url';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { createPostgresSampleStore } from '../src/adapters/postgres/sample-store.js';
import type { Sample } from '../src/domain/types.js';
import { generateDcgmCsv } from '../src/generate/generator.js';
import { DcgmParser } from '../src/ingest/dcgm-reader.js';
import { encodeSamplesCopy } from '../src/storage/binary-copy.js';
import { DAY_MS, dayStart, partitionName, type PartitionedTable } from '../src/storage/partitions.js';
import { buildLatestSamples, buildSampleQuery } from '../src/storage/queries.js';
import { ROLLUP_LEVELS } from '../src/storage/rollups.js';
import { startPostgres, type PostgresHarness } from '../test/harness/postgres.js';
import { spawnCli, type CliProcess } from '../test/support/cli-process.js';
import { ensureBuilt } from './build.js';

/** Median and spread of one statistic over the rounds. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  /** One value per round. */
  rounds: number[];
}

/** SQL timing of a query's statement under EXPLAIN (ANALYZE, BUFFERS), warm. */
export interface SqlTiming {
  planningMs: number;
  executionMs: number;
  /** The plan (first 60 lines). */
  plan: string;
}

/** One query at one size. */
export interface QueryFigure {
  id: 'latest10' | 'hourRaw' | 'thirtyDaysAuto' | 'cluster';
  label: string;
  /** Path and query string as requested. */
  url: string;
  /** Items in the response (array length; 1 for the cluster view). */
  items: number;
  /** Response body size. */
  bytes: number;
  /** `x-resolution` of the response (telemetry routes). */
  resolution?: string;
  /** Requests measured in each round. */
  requests: number[];
  p50Ms: Spread;
  p99Ms: Spread;
  /** p99 target at this size, if any. */
  targetP99Ms?: number;
  met?: boolean;
  /** The statement the store runs for this request (telemetry routes). */
  sql?: SqlTiming;
}

/** Everything measured at one size. */
export interface SizeFigures {
  samples: number;
  shape: {
    series: number;
    scrapeIntervalSec: number;
    /** Scrapes of every GPU. */
    fleetScrapes: number;
    /** Scrapes of the queried GPU. */
    queriedGpuScrapes: number;
    queriedGpuDays: number;
    /** T_END. */
    newest: string;
    partitionsPerTable: number;
  };
  load: {
    seconds: number;
    rowsPerSec: number;
    /** Seconds per step: writeBatch of the newest scrape, COPY, ATTACH, VACUUM ANALYZE, checks. */
    steps: Record<string, number>;
  };
  dbSizeBytes: number;
  tableSizesBytes: Record<string, number>;
  /** Spawn of `api --traditional` until it printed its address (start, migrate, first mirror pass). */
  apiStartupMs: number;
  /** The mirror's `latestSamples` statement (run at startup and every 5 s): median of 3, and EXPLAIN. */
  latestSamples: { ms: number; rows: number; sql: SqlTiming };
  queries: QueryFigure[];
  /**
   * Candidate rewrites (not what the API runs), timed on the same data: the latest-N query as a
   * per-series LATERAL top-N, and the mirror's latestSamples bounded to the last day.
   */
  candidates: { latestNLateral: SqlTiming; latestSamplesSinceOneDay?: SqlTiming };
  checks: string[];
  /** 1-minute load average of the machine before loading and after each round (2 cores: 2 = busy). */
  loadAverage: { beforeLoad: number; afterRounds: number[] };
}

/** Result of {@link benchQueries}. JSON-serialisable. */
export interface QueryFigures {
  date: string;
  machine: { cpus: number; cpuModel?: string; memoryGiB: number; node: string };
  runs: number;
  sizes: SizeFigures[];
}

const CLUSTER = 'bench';
const HOSTS = 125;
const GPUS_PER_HOST = 8;
const STEP_MS = 30_000;
const HOUR_MS = 3_600_000;
/** The queried GPU covers this much (30 days and the one-hour margin of the 30-day query). */
const HISTORY_MS = 30 * DAY_MS + HOUR_MS;
const WARMUP_REQUESTS = 20;
const MAX_REQUESTS = 200;
const MIN_REQUESTS = 5;
const ROUND_BUDGET_MS = 3_000;
const WARMUP_BUDGET_MS = 2_000;
const REQUEST_TIMEOUT_MS = 15_000;
const STATEMENT_TIMEOUT = '180s';
const TARGET_P99_MS = 20;
const TARGET_SIZE = 10_000_000;

/** Value ranges [low, high, 1/resolution] per DCGM field (H100-like). */
const METRIC_RANGES: Record<string, [number, number, number]> = {
  DCGM_FI_DEV_GPU_UTIL: [0, 100, 1],
  DCGM_FI_DEV_MEM_COPY_UTIL: [0, 100, 1],
  DCGM_FI_DEV_POWER_USAGE: [66, 700, 1000],
  DCGM_FI_DEV_GPU_TEMP: [26, 84, 1],
  DCGM_FI_DEV_FB_USED: [0, 80_000, 1],
  DCGM_FI_DEV_FB_FREE: [1_000, 81_007, 1],
  DCGM_FI_DEV_DEC_UTIL: [0, 4, 1],
  DCGM_FI_DEV_ENC_UTIL: [0, 2, 1],
  DCGM_FI_DEV_SM_CLOCK: [345, 1_980, 1],
  DCGM_FI_DEV_MEM_CLOCK: [2_619, 2_619, 1],
};

type Log = (line: string) => void;

function spread(values: number[]): Spread {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    median: sorted[Math.floor(sorted.length / 2)]!,
    min: sorted[0]!,
    max: sorted.at(-1)!,
    rounds: values,
  };
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

const round2 = (n: number): number => Math.round(n * 100) / 100;
const seconds = (fromMs: number): number => round2((performance.now() - fromMs) / 1000);

/** Reject after `ms` with a message naming what was awaited. */
async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`bench: timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Shape of one size: W scrapes for every GPU, H for the queried one, 10 x (999 W + H) samples. */
function planShape(samples: number): { fleet: number; history: number } {
  const others = HOSTS * GPUS_PER_HOST - 1;
  const wantHistory = HISTORY_MS / STEP_MS + 1;
  const smallest = 10 * (wantHistory + others);
  if (!Number.isInteger(samples) || samples % 10 !== 0 || samples < smallest) {
    throw new Error(
      `bench: a size must be a multiple of 10 and at least ${smallest} (30 days of the queried GPU and one scrape of the others), got ${samples}`,
    );
  }
  const fleet = Math.floor((samples / 10 - wantHistory) / others);
  return { fleet, history: samples / 10 - others * fleet };
}

/** The newest scrape of the fleet at `atMs`, from the project's generator and parser. */
function newestScrape(atMs: number): Sample[] {
  const parser = new DcgmParser({ source: 'bench-queries', clusterId: CLUSTER });
  const out: Sample[] = [];
  const take = (rows: ReturnType<DcgmParser['push']>): void => {
    for (const r of rows) {
      if (!r.ok) throw new Error(`bench: generated row refused: ${r.deadLetter.reason}`);
      out.push(r.sample);
    }
  };
  for (const chunk of generateDcgmCsv({
    hosts: HOSTS,
    gpusPerHost: GPUS_PER_HOST,
    intervalMs: STEP_MS,
    start: atMs,
    seed: 7,
    chunkRows: 10_000,
  })) {
    take(parser.push(chunk));
  }
  take(parser.end());
  return out;
}

// Binary COPY of rollup rows: (series_id int4, bucket timestamptz, min, max, sum float8, count int8,
// last float8, last_ts timestamptz). Same framing as src/storage/binary-copy.ts.
const PG_EPOCH_MS = 946_684_800_000;
const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const ROLLUP_ROW_BYTES = 2 + (4 + 4) + (4 + 8) * 7;
const TWO_32 = 2 ** 32;

function writeTimestamp(buf: Buffer, o: number, ms: number): number {
  const us = Math.round((ms - PG_EPOCH_MS) * 1000);
  const hi = Math.floor(us / TWO_32);
  o = buf.writeInt32BE(8, o);
  o = buf.writeInt32BE(hi, o);
  return buf.writeUInt32BE(us - hi * TWO_32, o);
}

/**
 * The rollup buckets of one level for a time range, folded while the samples are generated (each
 * series in time order): min, max, sum (added in time order), count, and the value of the newest
 * sample, i.e. what the store's rollup flush (`nexus_fold_pending`) computes, in typed arrays (JS
 * maps took ~1 us per sample here, most of the load time). Slot = (series position, bucket).
 */
class BucketFolder {
  #min = new Float64Array(0);
  #max = new Float64Array(0);
  #sum = new Float64Array(0);
  #count = new Uint32Array(0);
  #last = new Float64Array(0);
  #lastTs = new Float64Array(0);
  #startMs = 0;
  #buckets = 0;
  #positions = 0;

  constructor(readonly bucketMs: number) {}

  /** Start over for buckets covering [startMs, endMs) and `positions` series. */
  reset(startMs: number, endMs: number, positions: number): void {
    this.#startMs = startMs;
    this.#buckets = Math.ceil((endMs - startMs) / this.bucketMs);
    this.#positions = positions;
    const slots = this.#buckets * positions;
    if (this.#count.length < slots) {
      this.#min = new Float64Array(slots);
      this.#max = new Float64Array(slots);
      this.#sum = new Float64Array(slots);
      this.#count = new Uint32Array(slots);
      this.#last = new Float64Array(slots);
      this.#lastTs = new Float64Array(slots);
    } else {
      this.#count.fill(0, 0, slots);
    }
  }

  add(position: number, ts: number, v: number): void {
    const slot = position * this.#buckets + Math.floor((ts - this.#startMs) / this.bucketMs);
    if (this.#count[slot] === 0) {
      this.#min[slot] = v;
      this.#max[slot] = v;
      this.#sum[slot] = v;
      this.#count[slot] = 1;
      this.#last[slot] = v;
      this.#lastTs[slot] = ts;
      return;
    }
    if (v < this.#min[slot]!) this.#min[slot] = v;
    if (v > this.#max[slot]!) this.#max[slot] = v;
    this.#sum[slot]! += v;
    this.#count[slot]! += 1;
    if (ts >= this.#lastTs[slot]!) {
      this.#last[slot] = v;
      this.#lastTs[slot] = ts;
    }
  }

  /**
   * The buckets as one binary COPY stream of (series_id, bucket, min, max, sum, count, last, last_ts),
   * bucket by bucket (the order a collector creates them in), series in position order.
   */
  encode(seriesIdAt: (position: number) => number): Buffer {
    let rows = 0;
    const slots = this.#buckets * this.#positions;
    for (let s = 0; s < slots; s++) if (this.#count[s] !== 0) rows++;
    const buf = Buffer.allocUnsafe(COPY_SIGNATURE.length + 8 + rows * ROLLUP_ROW_BYTES + 2);
    COPY_SIGNATURE.copy(buf, 0);
    let o = COPY_SIGNATURE.length;
    o = buf.writeInt32BE(0, o);
    o = buf.writeInt32BE(0, o);
    const f8 = (v: number): void => {
      o = buf.writeInt32BE(8, o);
      o = buf.writeDoubleBE(v, o);
    };
    for (let b = 0; b < this.#buckets; b++) {
      for (let p = 0; p < this.#positions; p++) {
        const slot = p * this.#buckets + b;
        const count = this.#count[slot]!;
        if (count === 0) continue;
        o = buf.writeInt16BE(8, o);
        o = buf.writeInt32BE(4, o);
        o = buf.writeInt32BE(seriesIdAt(p), o);
        o = writeTimestamp(buf, o, this.#startMs + b * this.bucketMs);
        f8(this.#min[slot]!);
        f8(this.#max[slot]!);
        f8(this.#sum[slot]!);
        o = buf.writeInt32BE(8, o);
        o = buf.writeInt32BE(0, o);
        o = buf.writeUInt32BE(count, o);
        f8(this.#last[slot]!);
        o = writeTimestamp(buf, o, this.#lastTs[slot]!);
      }
    }
    buf.writeInt16BE(-1, o);
    return buf;
  }
}

async function copyInto(client: pg.Client, sql: string, data: Buffer): Promise<number> {
  const stream = client.query(copyFrom(sql));
  stream.end(data);
  await within(finished(stream), 300_000, sql);
  return stream.rowCount;
}

async function connect(url: string): Promise<pg.Client> {
  const client = new pg.Client({ connectionString: url });
  // Errors of a connection that the teardown ends must not crash the bench.
  client.on('error', () => undefined);
  await within(client.connect(), 30_000, 'connecting to PostgreSQL');
  await client.query(
    `SET statement_timeout = '${STATEMENT_TIMEOUT}'; SET maintenance_work_mem = '1GB'; SET work_mem = '64MB'`,
  );
  return client;
}

const DAY_BOUND = (ms: number): string => `${new Date(ms).toISOString().slice(0, 10)} 00:00:00+00`;
const PARENTS: readonly PartitionedTable[] = ['samples', 'samples_1m', 'samples_1h'];

/** A deterministic, bounded, DCGM-looking value of series `j` (pipeline order) at scrape `k` back. */
function makeValueFn(samples: Sample[]): (j: number, k: number) => number {
  const lo = new Float64Array(samples.length);
  const span = new Float64Array(samples.length);
  const scale = new Float64Array(samples.length);
  samples.forEach((s, j) => {
    const [l, h, sc] = METRIC_RANGES[s.metric] ?? [0, 100, 1];
    lo[j] = l;
    span[j] = h - l;
    scale[j] = sc;
  });
  return (j, k) => {
    const x = 0.5 + 0.35 * Math.sin(k / 240 + j) + 0.15 * Math.sin(k * 1.7 + j * 3.1);
    const clamped = x < 0 ? 0 : x > 1 ? 1 : x;
    return Math.round((lo[j]! + span[j]! * clamped) * scale[j]!) / scale[j]!;
  };
}

interface Loaded {
  url: string;
  newestMs: number;
  host: string;
  gpuId: string;
  shape: SizeFigures['shape'];
  load: SizeFigures['load'];
  checks: string[];
}

/** Migrate, write the newest scrape through the store, bulk load every earlier day, check. */
async function loadStore(server: PostgresHarness, samples: number, log: Log): Promise<Loaded> {
  const url = await server.createDatabase('bench');
  const { fleet, history } = planShape(samples);
  const newestMs = dayStart(Date.now());
  const oldestMs = newestMs - (history - 1) * STEP_MS;
  const steps: Record<string, number> = {};
  const checks: string[] = [];
  const started = performance.now();

  // 1. The newest scrape through the store's write path: series rows, samples, rollups.
  let t = performance.now();
  const scrape = newestScrape(newestMs);
  const store = await createPostgresSampleStore({ connectionString: url, poolSize: 2 });
  try {
    await within(store.migrate(), 60_000, 'migrations');
    const written = await within(
      store.writeBatch({ id: 'bench-newest-scrape', source: 'bench', samples: scrape, deadLetters: [] }),
      60_000,
      'writeBatch of the newest scrape',
    );
    if (written.inserted !== scrape.length) {
      throw new Error(`bench: writeBatch inserted ${written.inserted} of ${scrape.length}`);
    }
  } finally {
    await store.close();
  }
  steps.writeBatchNewestScrape = seconds(t);

  const clients = await Promise.all(PARENTS.map(() => connect(url)));
  const [raw, m1, h1] = clients as [pg.Client, pg.Client, pg.Client];
  const clientOf: Record<PartitionedTable, pg.Client> = { samples: raw, samples_1m: m1, samples_1h: h1 };
  try {
    const { rows: seriesRows } = await raw.query<{
      id: number;
      hostname: string;
      gpu_id: string;
      metric: string;
    }>('SELECT id, hostname, gpu_id, metric FROM series');
    if (seriesRows.length !== scrape.length) {
      throw new Error(`bench: ${seriesRows.length} series after the first write, expected ${scrape.length}`);
    }
    const idOf = new Map(seriesRows.map((r) => [`${r.hostname}\0${r.gpu_id}\0${r.metric}`, r.id]));
    const seriesIds = Int32Array.from(scrape, (s) => idOf.get(`${s.hostname}\0${s.gpuId}\0${s.metric}`)!);
    const queried = scrape.find((s) => s.gpuId === '0')!;
    const isHistory = scrape.map((s) => s.hostname === queried.hostname && s.gpuId === queried.gpuId);
    const historyJs = isHistory.flatMap((h, j) => (h ? [j] : []));
    const folders = ROLLUP_LEVELS.map((level) => ({
      table: level.table,
      folder: new BucketFolder(level.bucketMs),
    }));
    const valueAt = makeValueFn(scrape);

    // 2. Every earlier day: partitions made like nexus_ensure_partitions, filled by binary COPY.
    t = performance.now();
    const days: number[] = [];
    for (let d = dayStart(oldestMs); d < newestMs; d += DAY_MS) days.push(d);
    const capacity = (HOUR_MS / STEP_MS) * scrape.length;
    const ids = new Int32Array(capacity);
    const tss = new Float64Array(capacity);
    const vals = new Float64Array(capacity);
    let copied = 0;
    let nodeMs = 0;
    let pending: Promise<unknown> = Promise.resolve();
    for (const day of days) {
      await pending; // the previous day's COPYs use these connections
      for (const parent of PARENTS) {
        await clientOf[parent].query(
          `CREATE TABLE ${partitionName(parent, day)} (LIKE ${parent} INCLUDING DEFAULTS INCLUDING CONSTRAINTS) WITH (fillfactor = ${parent === 'samples' ? 100 : 70})`,
        );
      }
      // Chunks: the hours of the day before the fleet's first scrape together (only the queried
      // GPU reports then), then one chunk per hour. Every chunk holds whole hours, so its 1m and 1h
      // buckets are complete; one chunk is being copied while the next one is generated.
      let n = 0;
      let chunkAll = false;
      const flush = async (): Promise<void> => {
        if (n === 0) return;
        const rows = n;
        n = 0;
        const encodeStarted = performance.now();
        const rawData = encodeSamplesCopy(ids, tss, vals, 0, rows);
        const seriesIdAt = chunkAll
          ? (p: number): number => seriesIds[p]!
          : (p: number): number => seriesIds[historyJs[p]!]!;
        const rollups = folders.map((f) => ({ table: f.table, data: f.folder.encode(seriesIdAt) }));
        nodeMs += performance.now() - encodeStarted;
        await pending;
        pending = Promise.all([
          copyInto(
            raw,
            `COPY ${partitionName('samples', day)} (series_id, ts, value) FROM STDIN WITH (FORMAT binary)`,
            rawData,
          ).then((c) => {
            if (c !== rows) throw new Error(`bench: COPY stored ${c} of ${rows} samples`);
            copied += c;
          }),
          ...rollups.map(({ table, data }) =>
            copyInto(
              clientOf[table],
              `COPY ${partitionName(table, day)} (series_id, bucket, min, max, sum, count, last, last_ts) FROM STDIN WITH (FORMAT binary)`,
              data,
            ),
          ),
        ]);
      };
      for (let hour = day; hour < day + DAY_MS; hour += HOUR_MS) {
        const first = Math.max(hour, oldestMs);
        const end = Math.min(hour + HOUR_MS, newestMs);
        if (first >= end) continue;
        // The newest scrape of the hour is the fleet's if any of the hour's are.
        const all = (newestMs - (end - STEP_MS)) / STEP_MS < fleet;
        if (all || chunkAll || n === 0) {
          await flush();
          chunkAll = all;
          for (const f of folders) {
            if (all) f.folder.reset(hour, hour + HOUR_MS, scrape.length);
            else f.folder.reset(day, day + DAY_MS, historyJs.length);
          }
        }
        const generateStarted = performance.now();
        for (let ts = first; ts < end; ts += STEP_MS) {
          const k = (newestMs - ts) / STEP_MS;
          const fleetScrape = k < fleet;
          const count = fleetScrape ? scrape.length : historyJs.length;
          for (let i = 0; i < count; i++) {
            const j = fleetScrape ? i : historyJs[i]!;
            const v = valueAt(j, k);
            ids[n] = seriesIds[j]!;
            tss[n] = ts;
            vals[n] = v;
            n++;
            const position = chunkAll ? j : i;
            for (const f of folders) f.folder.add(position, ts, v);
          }
        }
        nodeMs += performance.now() - generateStarted;
      }
      await flush();
    }
    await pending;
    steps.copy = seconds(t);
    steps.copyNodeGenerateFoldEncode = round2(nodeMs / 1000);
    log(
      `bench: ${(copied + scrape.length).toLocaleString('en-US')} samples in ${days.length + 1} days copied in ${steps.copy} s; attaching ...`,
    );

    // 3. ATTACH (builds each partition's indexes), one connection per parent table.
    t = performance.now();
    await Promise.all(
      PARENTS.map(async (parent, i) => {
        for (const day of days) {
          await clients[i]!.query(
            `ALTER TABLE ${parent} ATTACH PARTITION ${partitionName(parent, day)} FOR VALUES FROM ('${DAY_BOUND(day)}') TO ('${DAY_BOUND(day + DAY_MS)}')`,
          );
        }
      }),
    );
    steps.attach = seconds(t);

    t = performance.now();
    await Promise.all(PARENTS.map((parent, i) => clients[i]!.query(`VACUUM (ANALYZE) ${parent}`)));
    await raw.query('VACUUM (ANALYZE) series');
    steps.vacuumAnalyze = seconds(t);

    // 4. Checks (the newest scrape's rollups folded first, as a reader of the store would).
    t = performance.now();
    await raw.query('SELECT nexus_flush_rollups()');
    const [count, sum1m, sum1h] = await Promise.all([
      raw.query<{ n: number }>('SELECT count(*)::float8 AS n FROM samples'),
      m1.query<{ n: number }>('SELECT sum(count)::float8 AS n FROM samples_1m'),
      h1.query<{ n: number }>('SELECT sum(count)::float8 AS n FROM samples_1h'),
    ]);
    for (const [what, got] of [
      ['samples', count.rows[0]?.n],
      ['sum(count) of samples_1m', sum1m.rows[0]?.n],
      ['sum(count) of samples_1h', sum1h.rows[0]?.n],
    ] as const) {
      if (got !== samples) throw new Error(`bench: ${what} is ${got}, expected ${samples}`);
    }
    checks.push(`${samples} samples; sum(count) of samples_1m and samples_1h = ${samples}`);

    const other = scrape.find((s) => s.hostname !== queried.hostname && s.gpuId === '3')!;
    const checkIds = [...seriesIds].filter(
      (_, j) => isHistory[j] || (scrape[j]!.hostname === other.hostname && scrape[j]!.gpuId === '3'),
    );
    const checkDay = newestMs - DAY_MS;
    for (const level of ROLLUP_LEVELS) {
      const { rows } = await raw.query<{ buckets: number; bad: number }>(
        `WITH raw AS (
  SELECT series_id, date_bin($4::interval, ts, timestamptz 'epoch') AS b, count(*) AS c, sum(value) AS s,
         min(value) AS mn, max(value) AS mx, max(ts) AS lt, (array_agg(value ORDER BY ts DESC))[1] AS l
  FROM samples WHERE series_id = ANY($1) AND ts >= to_timestamp($2::float8 / 1000) AND ts < to_timestamp($3::float8 / 1000)
  GROUP BY 1, 2)
SELECT count(*)::float8 AS buckets,
       count(*) FILTER (WHERE r.series_id IS NULL OR r.count <> raw.c OR abs(r.sum - raw.s) > 1e-9 * greatest(1, abs(raw.s))
                        OR r.min <> raw.mn OR r.max <> raw.mx OR r.last_ts <> raw.lt OR r.last <> raw.l)::float8 AS bad
FROM raw LEFT JOIN ${level.table} r ON r.series_id = raw.series_id AND r.bucket = raw.b`,
        [checkIds, checkDay, newestMs, `${level.bucketMs / 1000} seconds`],
      );
      const r = rows[0]!;
      if (!(r.buckets > 0) || r.bad !== 0) {
        throw new Error(
          `bench: ${level.table}: ${r.bad} of ${r.buckets} buckets differ from the raw samples`,
        );
      }
      checks.push(
        `${level.table}: ${r.buckets} buckets of ${checkIds.length} series equal an aggregate of the raw day`,
      );
    }

    // The loaded partitions look exactly like the ones nexus_ensure_partitions made (tomorrow's).
    const describe = `SELECT coalesce(array_to_string(c.reloptions, ','), '') AS opts,
  (SELECT string_agg(replace(pg_get_indexdef(i.indexrelid), c.relname, '*'), '; ' ORDER BY replace(pg_get_indexdef(i.indexrelid), c.relname, '*'))
     FROM pg_index i WHERE i.indrelid = c.oid) AS idx,
  (SELECT string_agg(replace(k.conname, c.relname, '*') || ' ' || pg_get_constraintdef(k.oid), '; '
          ORDER BY replace(k.conname, c.relname, '*')) FROM pg_constraint k WHERE k.conrelid = c.oid) AS cons,
  c.relispartition AS part
FROM pg_class c WHERE c.relname = $1`;
    for (const parent of PARENTS) {
      const [mine, theirs] = await Promise.all(
        [days.at(-1)!, newestMs + DAY_MS].map(
          async (d) => (await raw.query(describe, [partitionName(parent, d)])).rows[0],
        ),
      );
      if (!theirs || JSON.stringify(mine) !== JSON.stringify(theirs)) {
        throw new Error(
          `bench: loaded partition of ${parent} differs from a migration-made one: ${JSON.stringify(mine)} vs ${JSON.stringify(theirs)}`,
        );
      }
    }
    checks.push(
      'loaded partitions: same indexes, constraints and fillfactor as nexus_ensure_partitions makes',
    );
    steps.checks = seconds(t);
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
  }

  const total = (performance.now() - started) / 1000;
  return {
    url,
    newestMs,
    host: scrape.find((s) => s.gpuId === '0')!.hostname,
    gpuId: '0',
    shape: {
      series: scrape.length,
      scrapeIntervalSec: STEP_MS / 1000,
      fleetScrapes: fleet,
      queriedGpuScrapes: history,
      queriedGpuDays: round2(((history - 1) * STEP_MS) / DAY_MS),
      newest: new Date(newestMs).toISOString(),
      partitionsPerTable: 0,
    },
    load: {
      seconds: round2(total),
      // Rows per second of the whole load, checks included.
      rowsPerSec: Math.round(samples / total),
      steps,
    },
    checks,
  };
}

interface QueryPlan {
  id: QueryFigure['id'];
  label: string;
  url: string;
  /** Arguments of buildSampleQuery as the API passes them (limit + 1: the has-more probe). */
  sql?: Parameters<typeof buildSampleQuery>[0];
  check: (body: unknown, headers: Headers) => string;
}

function queryPlans(loaded: Loaded): QueryPlan[] {
  const { host, gpuId, newestMs } = loaded;
  const base = `/api/v1/clusters/${CLUSTER}/hosts/${host}/gpus/${gpuId}/telemetry`;
  const iso = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z');
  const gpu = { clusterId: CLUSTER, hostname: host, gpuId };
  const items = (body: unknown): unknown[] => {
    if (!Array.isArray(body)) throw new Error('bench: telemetry response is not an array');
    return body;
  };
  const expect = (what: string, got: unknown, want: unknown): void => {
    if (got !== want) throw new Error(`bench: ${what}: got ${String(got)}, expected ${String(want)}`);
  };
  const hourItems = (HOUR_MS / STEP_MS + 1) * 10;
  const monthItems = ((30 * DAY_MS) / HOUR_MS + 1) * 10;
  return [
    {
      id: 'latest10',
      label: '1. latest 10 samples, one GPU',
      url: `${base}?limit=10`,
      sql: { gpu, limit: 11, order: 'desc' },
      check: (body, headers) => {
        const list = items(body) as { timestamp: string }[];
        expect('latest-10 items', list.length, 10);
        expect('latest-10 newest timestamp', Date.parse(list[0]!.timestamp), newestMs);
        return `latest 10: 10 samples, newest ${list[0]!.timestamp}, x-resolution ${headers.get('x-resolution')}`;
      },
    },
    {
      id: 'hourRaw',
      label: '2. one GPU, one hour, raw',
      url: `${base}?start_time=${iso(newestMs - HOUR_MS)}&end_time=${iso(newestMs)}&resolution=raw&limit=10000`,
      sql: {
        gpu,
        startMs: newestMs - HOUR_MS,
        endMs: newestMs,
        limit: 10_001,
        order: 'desc',
        resolution: 'raw',
      },
      check: (body, headers) => {
        expect('one-hour x-resolution', headers.get('x-resolution'), 'raw');
        expect('one-hour items', items(body).length, hourItems);
        return `one hour raw: ${hourItems} samples (121 scrapes x 10 metrics)`;
      },
    },
    {
      id: 'thirtyDaysAuto',
      label: '3. one GPU, 30 days, auto',
      url: `${base}?start_time=${iso(newestMs - 30 * DAY_MS)}&end_time=${iso(newestMs)}&resolution=auto&limit=10000`,
      sql: {
        gpu,
        startMs: newestMs - 30 * DAY_MS,
        endMs: newestMs,
        limit: 10_001,
        order: 'desc',
        resolution: '1h',
      },
      check: (body, headers) => {
        expect('30-day x-resolution', headers.get('x-resolution'), '1h');
        const list = items(body) as { aggregate?: { count: number } }[];
        expect('30-day items', list.length, monthItems);
        expect('30-day aggregate present', typeof list[1]?.aggregate?.count, 'number');
        return `30 days auto: ${monthItems} items from the 1h rollups (721 buckets x 10 metrics)`;
      },
    },
    {
      id: 'cluster',
      label: '4. cluster view',
      url: `/api/v1/clusters/${CLUSTER}`,
      check: (body) => {
        const m = (body as { metadata?: Record<string, number> }).metadata ?? {};
        expect('cluster total_hosts', m.total_hosts, HOSTS);
        expect('cluster total_gpus', m.total_gpus, HOSTS * GPUS_PER_HOST);
        return `cluster view: ${m.total_hosts} hosts, ${m.total_gpus} GPUs (${m.active_hosts} / ${m.active_gpus} active)`;
      },
    },
  ];
}

async function request(
  origin: string,
  path: string,
): Promise<{ ms: number; bytes: number; body: ArrayBuffer; headers: Headers }> {
  const started = performance.now();
  const res = await fetch(origin + path, { signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
  const body = await res.arrayBuffer();
  const ms = performance.now() - started;
  if (res.status !== 200) {
    throw new Error(
      `bench: GET ${path} answered ${res.status}: ${Buffer.from(body).toString('utf8').slice(0, 300)}`,
    );
  }
  return { ms, bytes: body.byteLength, body, headers: res.headers };
}

/** One round of sequential requests: up to MAX_REQUESTS, within ROUND_BUDGET_MS (at least MIN_REQUESTS). */
async function round(origin: string, path: string): Promise<number[]> {
  const latencies: number[] = [];
  const started = performance.now();
  while (
    latencies.length < MAX_REQUESTS &&
    (latencies.length < MIN_REQUESTS || performance.now() - started < ROUND_BUDGET_MS)
  ) {
    latencies.push((await request(origin, path)).ms);
  }
  return latencies.sort((a, b) => a - b);
}

/** Candidate latest-N: each series' newest N by its (series_id, ts) index, then the top N of those. */
const LATEST_N_LATERAL = `SELECT se.cluster_id, se.hostname, se.gpu_id, se.uuid, se.device, se.model_name, se.metric,
       se.container, se.pod, se.namespace, se.labels, (extract(epoch FROM sa.ts) * 1000)::float8 AS ts_ms, sa.value
FROM series se
CROSS JOIN LATERAL (SELECT ts, value FROM samples WHERE series_id = se.id ORDER BY ts DESC LIMIT $4) sa
WHERE se.cluster_id = $1 AND se.hostname = $2 AND se.gpu_id = $3
ORDER BY sa.ts DESC, se.metric DESC, se.id DESC
LIMIT $4`;

/** EXPLAIN (ANALYZE, BUFFERS) twice (the first warms the cache), the second's figures. */
async function explain(client: pg.Client, text: string, params: unknown[]): Promise<SqlTiming> {
  let plan: string[] = [];
  for (let i = 0; i < 2; i++) {
    const { rows } = await client.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, BUFFERS) ${text}`,
      params,
    );
    plan = rows.map((r) => r['QUERY PLAN']);
  }
  const grab = (label: string): number => {
    const line = plan.find((l) => l.startsWith(label));
    return line ? Number(/([\d.]+) ms/.exec(line)?.[1]) : Number.NaN;
  };
  return {
    planningMs: grab('Planning Time'),
    executionMs: grab('Execution Time'),
    plan: plan.slice(0, 60).join('\n'),
  };
}

async function stopApi(api: CliProcess): Promise<void> {
  api.kill('SIGTERM');
  const code = await Promise.race([api.exited, new Promise((r) => setTimeout(() => r('timeout'), 10_000))]);
  if (code === 'timeout') {
    api.kill('SIGKILL');
    await within(api.exited, 10_000, 'the API process to exit after SIGKILL');
  }
}

async function benchSize(samples: number, runs: number, log: Log): Promise<SizeFigures> {
  const loadAverage = { beforeLoad: round2(loadavg()[0]!), afterRounds: [] as number[] };
  log(
    `bench: ${samples.toLocaleString('en-US')} samples: starting PostgreSQL (load average ${loadAverage.beforeLoad}) ...`,
  );
  const server = await startPostgres();
  let api: CliProcess | undefined;
  let client: pg.Client | undefined;
  try {
    const loaded = await loadStore(server, samples, log);
    log(
      `bench: loaded ${samples.toLocaleString('en-US')} samples in ${loaded.load.seconds} s (${loaded.load.rowsPerSec.toLocaleString('en-US')} rows/s): ${JSON.stringify(loaded.load.steps)}`,
    );
    client = await connect(loaded.url);
    const size = await client.query<{ db: number; part: number }>(
      `SELECT pg_database_size(current_database())::float8 AS db,
              (SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass)::float8 AS part`,
    );
    const tableSizes: Record<string, number> = {};
    for (const parent of PARENTS) {
      const { rows } = await client.query<{ bytes: number }>(
        `SELECT sum(pg_total_relation_size(relid))::float8 AS bytes FROM pg_partition_tree($1::regclass)`,
        [parent],
      );
      tableSizes[parent] = rows[0]?.bytes ?? 0;
    }

    await ensureBuilt(log);
    log('bench: starting `nexus-telemetry api --traditional` ...');
    const spawned = performance.now();
    api = spawnCli(
      [
        'api',
        '--traditional',
        '--host',
        '127.0.0.1',
        '--port',
        '0',
        '--cluster-id',
        CLUSTER,
        '--log-level',
        'warn',
      ],
      { DATABASE_URL: loaded.url, ENABLE_NEXUS: 'false' },
      { built: true },
    );
    const line = await api.waitFor(/API listening on http:\/\/\S+/, 120_000);
    const apiStartupMs = Math.round(performance.now() - spawned);
    const origin = line.replace(/^.*listening on /, '');
    log(`bench: API up at ${origin} after ${apiStartupMs} ms`);

    const plans = queryPlans(loaded);
    const checks = [...loaded.checks];
    const first = new Map<string, { bytes: number; items: number; resolution?: string }>();
    for (const q of plans) {
      const r = await request(origin, q.url);
      const body: unknown = JSON.parse(Buffer.from(r.body).toString('utf8'));
      checks.push(q.check(body, r.headers));
      first.set(q.id, {
        bytes: r.bytes,
        items: Array.isArray(body) ? body.length : 1,
        resolution: r.headers.get('x-resolution') ?? undefined,
      });
      const warm = performance.now();
      for (let i = 1; i < WARMUP_REQUESTS && performance.now() - warm < WARMUP_BUDGET_MS; i++) {
        await request(origin, q.url);
      }
    }

    const p50s = new Map<string, number[]>();
    const p99s = new Map<string, number[]>();
    const counts = new Map<string, number[]>();
    for (let r = 0; r < runs; r++) {
      for (const q of plans) {
        const lat = await round(origin, q.url);
        const push = (m: Map<string, number[]>, v: number): void =>
          void m.set(q.id, [...(m.get(q.id) ?? []), v]);
        push(p50s, round2(percentile(lat, 50)));
        push(p99s, round2(percentile(lat, 99)));
        push(counts, lat.length);
      }
      loadAverage.afterRounds.push(round2(loadavg()[0]!));
      log(
        `bench: ${samples.toLocaleString('en-US')} samples, round ${r + 1}/${runs}: ` +
          plans
            .map((q) => `${q.id} p50 ${p50s.get(q.id)!.at(-1)} / p99 ${p99s.get(q.id)!.at(-1)} ms`)
            .join(', '),
      );
    }
    await stopApi(api);
    api = undefined;

    log('bench: EXPLAIN ANALYZE of the statements ...');
    const queries: QueryFigure[] = [];
    for (const q of plans) {
      const f = first.get(q.id)!;
      const figure: QueryFigure = {
        id: q.id,
        label: q.label,
        url: q.url,
        items: f.items,
        bytes: f.bytes,
        requests: counts.get(q.id)!,
        p50Ms: spread(p50s.get(q.id)!),
        p99Ms: spread(p99s.get(q.id)!),
      };
      if (f.resolution !== undefined) figure.resolution = f.resolution;
      if ((q.id === 'latest10' || q.id === 'hourRaw') && samples >= TARGET_SIZE) {
        figure.targetP99Ms = TARGET_P99_MS;
        figure.met = figure.p99Ms.median <= TARGET_P99_MS;
      }
      if (q.sql) {
        const st = buildSampleQuery(q.sql, loaded.newestMs);
        figure.sql = await explain(client, st.text, st.params);
      }
      queries.push(figure);
    }
    const latest = buildLatestSamples();
    const latestRuns: number[] = [];
    let latestRows = 0;
    for (let i = 0; i < 3; i++) {
      const t = performance.now();
      latestRows = (await client.query(latest.text, latest.params)).rowCount ?? 0;
      latestRuns.push(performance.now() - t);
    }
    const latestSql = await explain(client, latest.text, latest.params);
    // Skipped once latestSamples no longer has this shape (e.g. after it was fixed).
    const bounded = latest.text.replace(
      'WHERE series_id = se.id',
      'WHERE series_id = se.id AND ts > to_timestamp($1::float8 / 1000)',
    );
    const candidates: SizeFigures['candidates'] = {
      latestNLateral: await explain(client, LATEST_N_LATERAL, [CLUSTER, loaded.host, loaded.gpuId, 11]),
    };
    if (bounded !== latest.text && latest.params.length === 0) {
      candidates.latestSamplesSinceOneDay = await explain(client, bounded, [loaded.newestMs - DAY_MS]);
    }

    return {
      samples,
      shape: { ...loaded.shape, partitionsPerTable: size.rows[0]!.part },
      load: loaded.load,
      dbSizeBytes: size.rows[0]!.db,
      tableSizesBytes: tableSizes,
      apiStartupMs,
      latestSamples: { ms: round2(spread(latestRuns).median), rows: latestRows, sql: latestSql },
      queries,
      candidates,
      checks,
      loadAverage,
    };
  } finally {
    if (api) await stopApi(api).catch(() => api?.kill('SIGKILL'));
    await client?.end().catch(() => undefined);
    await server.stop();
  }
}

/**
 * Measure REST query latency over PostgreSQL at each size (default 1M and 10M samples): load the
 * store, start `nexus-telemetry api --traditional` as a child process, and time the four queries
 * described in this module's header, `runs` rounds each. Everything runs on 127.0.0.1 in temp
 * directories and is torn down before the promise settles.
 */
export async function benchQueries(opts: {
  runs: number;
  sizes?: number[];
  log?: (l: string) => void;
}): Promise<QueryFigures> {
  const log = opts.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const sizes = opts.sizes ?? [1_000_000, 10_000_000];
  if (!Number.isInteger(opts.runs) || opts.runs < 1)
    throw new Error(`bench: runs must be >= 1, got ${opts.runs}`);
  const figures: QueryFigures = {
    date: new Date().toISOString(),
    machine: {
      cpus: cpus().length,
      cpuModel: cpus()[0]?.model,
      memoryGiB: Math.round(totalmem() / 2 ** 30),
      node: process.version,
    },
    runs: opts.runs,
    sizes: [],
  };
  for (const samples of sizes) figures.sizes.push(await benchSize(samples, opts.runs, log));
  return figures;
}

const fmtMs = (s: Spread): string => `${s.median} (${s.min}..${s.max})`;
const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** The figures as plain-text tables, one block per size. */
export function formatQueryFigures(f: QueryFigures): string {
  const out: string[] = [
    `REST query latency over PostgreSQL 15, \`api --traditional\` in its own process, 1 connection; median of ${f.runs} rounds (min..max); ${f.machine.cpus} cores, node ${f.machine.node}`,
  ];
  for (const s of f.sizes) {
    out.push(
      '',
      `${s.samples.toLocaleString('en-US')} samples: ${s.shape.series.toLocaleString('en-US')} series every ${s.shape.scrapeIntervalSec} s, ` +
        `${s.shape.fleetScrapes} scrapes per GPU, ${s.shape.queriedGpuScrapes.toLocaleString('en-US')} (${s.shape.queriedGpuDays} days) for the queried GPU, ` +
        `newest ${s.shape.newest}, ${s.shape.partitionsPerTable} partitions per table`,
      `load ${s.load.seconds} s (${s.load.rowsPerSec.toLocaleString('en-US')} rows/s): ` +
        Object.entries(s.load.steps)
          .map(([k, v]) => `${k} ${v} s`)
          .join(', '),
      `database ${mib(s.dbSizeBytes)} (` +
        Object.entries(s.tableSizesBytes)
          .map(([k, v]) => `${k} ${mib(v)}`)
          .join(', ') +
        `); API startup ${s.apiStartupMs} ms; mirror latestSamples ${s.latestSamples.ms} ms (${s.latestSamples.rows} rows, every 5 s); ` +
        `load average ${s.loadAverage.beforeLoad} before loading, ${s.loadAverage.afterRounds.join('/')} after the rounds`,
      `candidate SQL (not what the API runs): latest-N as a per-series LATERAL ${s.candidates.latestNLateral.executionMs} ms ` +
        `(now ${s.queries.find((q) => q.id === 'latest10')?.sql?.executionMs} ms); latestSamples since one day ${s.candidates.latestSamplesSinceOneDay?.executionMs ?? '-'} ms ` +
        `(now ${s.latestSamples.sql.executionMs} ms)`,
    );
    const rows = [
      ['query', 'items', 'bytes', 'p50 ms', 'p99 ms', 'req/round', 'SQL exec ms', 'target'],
      ...s.queries.map((q) => [
        q.label + (q.resolution ? ` [${q.resolution}]` : ''),
        String(q.items),
        String(q.bytes),
        fmtMs(q.p50Ms),
        fmtMs(q.p99Ms),
        q.requests.join('/'),
        q.sql ? String(q.sql.executionMs) : '',
        q.targetP99Ms === undefined ? '' : `p99 <= ${q.targetP99Ms}: ${q.met ? 'met' : 'MISSED'}`,
      ]),
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const r of rows)
      out.push(
        r
          .map((cell, c) => cell.padEnd(widths[c]!))
          .join('  ')
          .trimEnd(),
      );
  }
  return out.join('\n');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const out = process.argv.indexOf('--out');
  const main = async (): Promise<void> => {
    const figures = await benchQueries({
      runs: intListArg('--runs')?.[0] ?? 3,
      sizes: intListArg('--sizes'),
    });
    console.log(`\n${formatQueryFigures(figures)}`);
    if (out !== -1 && process.argv[out + 1])
      writeFileSync(process.argv[out + 1]!, `${JSON.stringify(figures, null, 2)}\n`);
  };
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
