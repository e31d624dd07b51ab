/**
 * Multi-process pipeline benchmark: how fast the shared modes move a DCGM CSV file into PostgreSQL,
 * against what PostgreSQL itself takes for the same rows, measured in one run on one server.
 *
 *   npx tsx bench/pipelines.ts [--rows N] [--runs K] [--modes floor,nexus,traditional,jetstream]
 *                              [--nexus-budget-s S] [--traditional-budget-s S] [--jetstream-budget-s S]
 *                              [--batch-size N]
 *
 * Input: a file from the project's generator (`writeDcgmCsv`, 125 hosts x 8 GPUs x 10 metrics,
 * seed 7, as bench/run.ts). One throw-away PostgreSQL 15 (test/harness/postgres.ts: 127.0.0.1 on a
 * free port, fsync=off, data in a temp dir) serves every stage; each run of each stage writes into
 * an empty table or a fresh database. Each figure is rows/s, median of K runs (default 3) and spread;
 * the run order is floor, nexus, traditional for run 1, then again for run 2, ..., so every
 * end-to-end figure has a floor taken minutes apart on the same machine.
 *
 * 1. Floor, `psql \copy`. Before the runs and NOT timed, the DCGM file is parsed once with the
 *    project's parser and written as a narrow CSV `series_id,ts,value` (series ids assigned per
 *    host/GPU/metric, ts as RFC 3339 text). Timed: one run of the real `psql` binary, from spawn to
 *    exit (connect, `\copy floor (series_id, ts, value) FROM '<narrow.csv>' WITH (FORMAT csv)`,
 *    commit), into `floor (series_id int4, ts timestamptz, value float8)` with the index shape of
 *    our `samples` table (src/storage/migrations.ts): PRIMARY KEY (series_id, ts) btree, BRIN on ts,
 *    the finite-value CHECK. Unlike `samples` it is not day-partitioned (the file spans one day)
 *    and has no rollups, ledger or series table: it is what PostgreSQL alone needs for the rows.
 *    The table is TRUNCATEd before each run.
 * 2. nexus end-to-end: `streamer <file>` -> etcd queue (ONE etcd member from test/harness/etcd.ts,
 *    data on /dev/shm, backend quota 2 GiB = etcd's own default, fresh per run) -> 2 `collector`
 *    processes -> PostgreSQL (fresh database per run), live hierarchy in the same etcd.
 * 3. traditional end-to-end: the same with the Redis queue (test/harness/redis.ts, appendonly yes,
 *    appendfsync always as docs/redis.md requires, data dir under the OS temp dir, fresh per run)
 *    and no etcd (ENABLE_NEXUS=false).
 *    jetstream end-to-end: the same with the NATS JetStream queue (`--queue nats` on the streamer
 *    and the collectors; ONE nats-server from test/harness/nats.ts, R1 stream, store on /dev/shm,
 *    fresh per run) and no etcd.
 *
 *    Both end-to-end modes spawn the real CLI as test/e2e/nexus.test.ts does (spawnCli in
 *    test/support/cli-process.ts), compiled: the bench builds dist/ first (bench/build.ts) and runs
 *    `node dist/cli/main.js`, as a deployment does (tsx would compile src/ inside the timed window). Settings are the defaults (BATCH_SIZE: 2,000 rows per batch in shared
 *    mode, `batchSizeFor`, or `--batch-size`; WORKERS 4 per collector; QUEUE_MAX_DEPTH 1000), LOG_LEVEL=warn. The
 *    collectors are started and have printed "consuming" (migrations applied) before the clock
 *    starts. Timed: from spawning the streamer (its start-up included) until the batch ledger says
 *    the store holds all N rows (`sum(sample_count)` of `batch_ledger`, polled every 100 ms; the
 *    ledger row commits with the samples), then checked once with `count(*)` on `samples`.
 *    Each timed window is capped (DEFAULT_BUDGET_SECONDS: nexus 20 s, traditional 50 s; flags
 *    --nexus-budget-s / --traditional-budget-s): a run still short of N rows then is stopped and
 *    reports rows stored / seconds, marked PARTIAL (a full nexus run of 1M rows takes 10+ minutes).
 *    A run whose store does not grow for 60 s fails, naming what it waited for.
 * 4. Ratio of each end-to-end median to the floor median (target for nexus: >= 0.5).
 * 5. Per process, each run: peak RSS (`VmHWM` of /proc/<pid>/status, polled every 200 ms and once
 *    more just before the process is stopped) and CPU seconds (utime + stime) spent in the timed
 *    window. Processes: the streamer, each collector, etcd or redis-server, and PostgreSQL (peak =
 *    its largest process, which counts the shared buffers that process touched; CPU = all its
 *    processes, the bench's own polling connection included).
 * 6. etcd (nexus): database size (`Maintenance.Status` dbSize, and dbSizeInUse) and revision when
 *    all rows are stored, with the revision the collectors' maintenance leader last compacted to
 *    (it compacts every MAINTENANCE_INTERVAL = 30 s, keeping 10,000 revisions); then, collectors
 *    stopped, compacted to the latest revision (in use), then defragmented (allocated).
 *
 * Every server and process listens on 127.0.0.1 only, lives in a temp dir, and is stopped in a
 * `finally` (also on error and on SIGINT/SIGTERM of the standalone run).
 */
import { execFile, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import {
  createWriteStream,
  existsSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
} from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { createEtcdClient } from '../src/adapters/etcd/client.js';
import { queueKeys } from '../src/adapters/etcd/queue-keys.js';
import { maintenanceMarkerKey } from '../src/collector/maintenance.js';
import { batchSizeFor, loadConfig, queueDepthFor } from '../src/config/config.js';
import { intArg } from './args.js';
import { writeDcgmCsv } from '../src/generate/generator.js';
import { readDcgm } from '../src/ingest/dcgm-reader.js';
import { openSources } from '../src/ingest/sources.js';
import { startEtcd, type EtcdHandle } from '../test/harness/etcd.js';
import { POSTGRES_BIN_DIR, startPostgres, type PostgresHarness } from '../test/harness/postgres.js';
import { startRedis, type RedisHandle } from '../test/harness/redis.js';
import { startNatsCluster, type NatsHandle } from '../test/harness/nats.js';
import { spawnCli, type CliProcess } from '../test/support/cli-process.js';
import { ensureBuilt } from './build.js';
import { figure, type Figure } from './figure.js';

const execFileAsync = promisify(execFile);

/** Cluster id of every bench process. */
const CLUSTER = 'bench';
/** Collector processes per end-to-end run. */
const COLLECTORS = 2;
/** etcd members of the nexus runs. */
const ETCD_MEMBERS = 1;
/** etcd backend quota: etcd's own default (the test harness defaults to 256 MiB). */
const ETCD_QUOTA_BYTES = 2 * 1024 ** 3;
const MiB = 1024 * 1024;
/**
 * Default budget of one end-to-end run's timed window, seconds (see
 * {@link PipelineBenchOptions.budgetSeconds}). On this project's 2-core machines nexus moves about
 * 5-8k rows/s (one etcd txn per GPU record per hierarchy round), so a full 1M-row run would take
 * 2-3 minutes: it is cut (20 s standalone, 45 s in `npm run bench`) and reported as a partial rate.
 * traditional stores 1M rows in about 40-70 s depending on load; it is cut at 50 s.
 */
export const DEFAULT_BUDGET_SECONDS: Readonly<Record<EndToEndMode, number>> = {
  nexus: 20,
  traditional: 50,
  jetstream: 50,
};

/** An end-to-end stage of {@link benchPipelines}. */
type EndToEndMode = 'nexus' | 'traditional' | 'jetstream';

/** A stage of {@link benchPipelines}. */
export type PipelineMode = 'floor' | EndToEndMode;

/** Options of {@link benchPipelines}. */
export interface PipelineBenchOptions {
  /** A DCGM CSV file from `writeDcgmCsv` (bench/run.ts: 125 hosts x 8 GPUs, seed 7). */
  file: string;
  /** Data rows in `file` (every one must be valid). */
  rows: number;
  /** Runs of each stage (the median is reported). */
  runs: number;
  /** Stages to measure (default all three; the ratios need `floor`). */
  modes?: PipelineMode[];
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
  /**
   * Longest timed window of one end-to-end run, seconds, per mode (defaults:
   * {@link DEFAULT_BUDGET_SECONDS}). A run that has not stored every row by then is stopped and
   * reports rows stored / seconds, marked partial, so a slow mode cannot blow the bench's time budget.
   */
  budgetSeconds?: Partial<Record<EndToEndMode, number>>;
  /** Rows per batch of the end-to-end runs (default: BATCH_SIZE's shared-mode default). */
  batchSize?: number;
  /** Fail a run (naming what it waited for) when the store did not grow for this long (default 60 s). */
  stallSeconds?: number;
}

/** Peak memory and CPU of one process (or process group) in one mode, over the runs. */
export interface ProcessFigures {
  /** `streamer`, `collector-1`, `collector-2`, `etcd`, `redis-server`, `postgres`. */
  name: string;
  /** VmHWM in MiB (for `postgres`: its largest process). */
  peakRssMiB: Figure;
  /** CPU seconds (user + system) spent in the timed window (for `postgres`: all its processes). */
  cpuSeconds: Figure;
}

/** etcd figures of the nexus runs. */
export interface EtcdFigures {
  /** Revisions written during the run (a fresh etcd each run): queue txns plus hierarchy writes. */
  revisions: Figure;
  /** Batches left in the queue at the end of the timed window (non-zero after a partial run). */
  backlogBatches: Figure;
  /** Allocated database size (dbSize) when all rows were stored, MiB. */
  dbSizeMiB: Figure;
  /** Logically used size (dbSizeInUse) when all rows were stored, MiB. */
  dbInUseMiB: Figure;
  /** Revision the collectors' maintenance leader last compacted to (0: it had not compacted yet). */
  projectCompactedRevision: Figure;
  /** dbSizeInUse after compacting to the latest revision (collectors stopped), MiB. */
  inUseAfterCompactionMiB: Figure;
  /** dbSize after that compaction and a defragmentation, MiB. */
  sizeAfterDefragMiB: Figure;
}

/** Figures of one end-to-end mode. */
export interface EndToEndFigures {
  /**
   * Rows per second: rows stored / seconds from streamer spawn to all rows stored (or, for a run
   * cut by the budget, to the cut).
   */
  rowsPerSec: Figure;
  /** Wall seconds of the timed window. */
  seconds: Figure;
  /** Per run: whether every row was stored within the budget. */
  complete: boolean[];
  /** Per run: rows stored at the end of the timed window. */
  storedRows: number[];
  /** The per-run budget in force, seconds. */
  budgetSeconds: number;
  /**
   * Rows per second of the streamer alone (spawn to exit: read, encode, publish with backpressure),
   * over the runs whose streamer finished within the budget; undefined when none did.
   */
  publishRowsPerSec: Figure | undefined;
  /** Median rows/s divided by the floor's median rows/s (undefined without a floor). */
  ratioToFloor: number | undefined;
  /** Each run's rows/s divided by the same run's floor. */
  ratioToFloorRuns: number[];
  processes: ProcessFigures[];
  /** Lines at warn level or above logged by the pipeline processes, over all runs. */
  warnings: number;
}

/** Result of {@link benchPipelines}; JSON-serialisable. */
export interface PipelineFigures {
  rows: number;
  runs: number;
  /** Settings every end-to-end run used. */
  settings: {
    batchSize: number;
    workersPerCollector: number;
    queueMaxDepth: number;
    collectors: number;
    etcdMembers: number;
    etcdQuotaMiB: number;
    redis: string;
    nats: string;
    postgres: string;
    cli: string;
  };
  floor?: {
    /** What the floor times. */
    what: string;
    rowsPerSec: Figure;
    seconds: Figure;
    /** Untimed preparation (DCGM CSV -> narrow CSV), seconds. */
    conversionSeconds: number;
  };
  nexus?: EndToEndFigures & { etcd: EtcdFigures; target: number };
  traditional?: EndToEndFigures;
  jetstream?: EndToEndFigures;
  /** Wall seconds of the whole benchPipelines call. */
  wallSeconds: number;
  /** 1-minute load average when the bench started and ended (other jobs distort the figures). */
  loadAverage: { start: number; end: number };
}

// ---------------------------------------------------------------------------------------------
// /proc sampling

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** VmHWM of `pid` in KiB; undefined once the process is gone (or a zombie). */
function readHwmKiB(pid: number): number | undefined {
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Parent pid and CPU ticks (utime + stime) of `pid`. */
function readStat(pid: number): { ppid: number; cpuTicks: number } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may hold spaces: state ppid ... utime(14) stime(15).
    const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
    return { ppid: Number(f[1]), cpuTicks: Number(f[11]) + Number(f[12]) };
  } catch {
    return undefined;
  }
}

function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Pids whose command line contains `needle` (a /proc scan; used once per run). */
function pidsWithCmdline(needle: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').includes(needle)) {
        found.push(Number(entry));
      }
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

interface PidUsage {
  baseTicks: number;
  ticks: number;
  hwmKiB: number;
}

interface Group {
  root: number;
  children: boolean;
  pids: Map<number, PidUsage>;
}

/** One process's (or group's) usage in one run. */
interface ProcessUsage {
  name: string;
  peakRssMiB: number;
  cpuSeconds: number;
}

/**
 * Polls VmHWM and CPU ticks of tracked processes. VmHWM is per process and only grows, so the last
 * reading before exit is its peak; CPU is counted from when tracking began.
 */
class ProcessSampler {
  private readonly groups = new Map<string, Group>();
  private readonly timer: NodeJS.Timeout;

  constructor(intervalMs = 200) {
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  /** Track `pid` (and, with `children`, every child it has now or later) as `name`. */
  track(name: string, pid: number | undefined, children = false): void {
    if (pid === undefined) return;
    const group: Group = { root: pid, children, pids: new Map() };
    this.groups.set(name, group);
    this.sampleGroup(group, true);
  }

  /** Take a reading now (also before a process is stopped). */
  sample(names?: string[]): void {
    for (const [name, group] of this.groups) {
      if (names === undefined || names.includes(name)) this.sampleGroup(group, false);
    }
  }

  /** Final reading; stop polling; usage per tracked name. */
  stop(): ProcessUsage[] {
    this.sample();
    clearInterval(this.timer);
    return [...this.groups].map(([name, group]) => {
      let peak = 0;
      let ticks = 0;
      for (const u of group.pids.values()) {
        peak = Math.max(peak, u.hwmKiB);
        ticks += u.ticks - u.baseTicks;
      }
      return { name, peakRssMiB: peak / 1024, cpuSeconds: ticks / CLK_TCK };
    });
  }

  private sampleGroup(group: Group, baseline: boolean): void {
    const pids = group.children ? [group.root, ...childPids(group.root)] : [group.root];
    for (const pid of pids) {
      const stat = readStat(pid);
      const hwm = readHwmKiB(pid);
      if (stat === undefined || hwm === undefined) continue;
      const known = group.pids.get(pid);
      if (known === undefined) {
        group.pids.set(pid, { baseTicks: baseline ? stat.cpuTicks : 0, ticks: stat.cpuTicks, hwmKiB: hwm });
      } else {
        known.ticks = stat.cpuTicks;
        known.hwmKiB = Math.max(known.hwmKiB, hwm);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// cleanup of everything this module started, also when the standalone run is interrupted

const liveChildren = new Set<CliProcess>();
const liveServerPids = new Set<number>();
/** Temp directories to remove if the process exits before the `finally` that removes them ran. */
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // The etcd and PostgreSQL harnesses stop their servers on 'exit' themselves; Redis and the CLI
  // processes are ours to kill.
  process.once('exit', () => {
    for (const p of liveChildren) p.kill('SIGKILL');
    for (const pid of liveServerPids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

function spawnTracked(args: string[], env: Record<string, string>): CliProcess {
  installExitHook();
  const p = spawnCli(args, env, { built: true });
  liveChildren.add(p);
  void p.exited.then(() => liveChildren.delete(p));
  return p;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process is gone. */
async function stopProcess(p: CliProcess, graceMs = 10_000): Promise<void> {
  if (p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.kill('SIGTERM');
  const timer = setTimeout(() => p.kill('SIGKILL'), graceMs);
  await p.exited;
  clearTimeout(timer);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** `promise`, or `fallback` after `ms`; the timer is cleared either way (no pending timer keeps the process up). */
async function orTimeout<T, F>(promise: Promise<T>, ms: number, fallback: F): Promise<T | F> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<F>((resolve) => (timer = setTimeout(() => resolve(fallback), ms))),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function fmtRows(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

// ---------------------------------------------------------------------------------------------
// floor: psql \copy

function psqlBinary(): string {
  const bundled = join(POSTGRES_BIN_DIR, 'psql');
  return existsSync(bundled) ? bundled : 'psql';
}

/** DCGM CSV -> `series_id,ts,value` CSV with the project's parser (not timed). */
async function writeNarrowCsv(file: string, out: string, rows: number): Promise<void> {
  const ids = new Map<string, number>();
  const stream = createWriteStream(out);
  let written = 0;
  let bad = 0;
  for await (const { source, chunks } of openSources(file)) {
    for await (const results of readDcgm(chunks, { source, clusterId: CLUSTER })) {
      let text = '';
      for (const r of results) {
        if (!r.ok) {
          bad += 1;
          continue;
        }
        const s = r.sample;
        const identity = `${s.hostname}\u0000${s.gpuId}\u0000${s.uuid}\u0000${s.metric}`;
        let id = ids.get(identity);
        if (id === undefined) ids.set(identity, (id = ids.size + 1));
        text += `${id},${new Date(s.timestampMs).toISOString()},${s.value}\n`;
        written += 1;
      }
      if (text !== '' && !stream.write(text)) await once(stream, 'drain');
    }
  }
  stream.end();
  await once(stream, 'finish');
  if (written !== rows || bad !== 0) {
    throw new Error(
      `narrow CSV: ${written} rows and ${bad} dead letters from ${file}, expected ${rows} rows`,
    );
  }
}

const FLOOR_DDL = `
CREATE TABLE floor (
  series_id integer NOT NULL,
  ts timestamptz NOT NULL,
  value double precision NOT NULL,
  CONSTRAINT floor_value_finite CHECK (value > '-Infinity'::float8 AND value < 'Infinity'::float8),
  CONSTRAINT floor_pkey PRIMARY KEY (series_id, ts)
);
CREATE INDEX floor_ts_brin ON floor USING brin (ts);`;

interface Floor {
  run(): Promise<number>;
  close(): Promise<void>;
}

async function prepareFloor(
  postgres: PostgresHarness,
  file: string,
  rows: number,
  dir: string,
): Promise<Floor & { conversionSeconds: number }> {
  const narrow = join(dir, 'floor.csv');
  const started = performance.now();
  await writeNarrowCsv(file, narrow, rows);
  const conversionSeconds = (performance.now() - started) / 1000;
  const url = await postgres.createDatabase('floor');
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(FLOOR_DDL);
  } catch (error) {
    await admin.end();
    throw error;
  }
  const psql = psqlBinary();
  const command = `\\copy floor (series_id, ts, value) FROM '${narrow.replace(/'/g, "''")}' WITH (FORMAT csv)`;
  const args = ['-X', '-v', 'ON_ERROR_STOP=1', '-h', postgres.host, '-p', String(postgres.port)];
  args.push('-U', postgres.user, '-d', 'floor', '-c', command);
  return {
    conversionSeconds,
    async run() {
      await admin.query('TRUNCATE floor');
      const t = performance.now();
      let stdout: string;
      try {
        ({ stdout } = await execFileAsync(psql, args, {
          env: { ...process.env, PGPASSWORD: postgres.password, PGCONNECT_TIMEOUT: '10' },
          timeout: Math.max(120_000, rows / 5), // 5k rows/s would be absurdly slow
        }));
      } catch (error) {
        const e = error as { stderr?: string; message: string };
        throw new Error(`psql \\copy into the floor table failed: ${e.message}\n${e.stderr ?? ''}`, {
          cause: error,
        });
      }
      const seconds = (performance.now() - t) / 1000;
      const copied = Number(/COPY (\d+)/.exec(stdout)?.[1]);
      if (copied !== rows) throw new Error(`psql \\copy reported "${stdout.trim()}", expected COPY ${rows}`);
      return seconds;
    },
    async close() {
      await admin.end();
    },
  };
}

// ---------------------------------------------------------------------------------------------
// end-to-end runs

interface EtcdRun {
  revisions: number;
  backlogBatches: number;
  dbSizeMiB: number;
  dbInUseMiB: number;
  projectCompactedRevision: number;
  inUseAfterCompactionMiB: number;
  sizeAfterDefragMiB: number;
}

interface E2eRun {
  seconds: number;
  /** Database, server and collectors started (not timed). */
  setupSeconds: number;
  /** Rows the store held at the end of the timed window (all of them unless the budget cut it). */
  storedRows: number;
  complete: boolean;
  /** Streamer spawn to exit; undefined when the budget stopped it first. */
  publishSeconds: number | undefined;
  processes: ProcessUsage[];
  warnings: number;
  etcd?: EtcdRun;
}

/** Lines a pino logger wrote at warn (40) or above. */
function warningLines(output: string): number {
  return output.split('\n').filter((l) => /"level":(4|5|6)0\b/.test(l)).length;
}

async function redisPid(url: string): Promise<number | undefined> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    const info = await client.info('server');
    const m = /process_id:(\d+)/.exec(info);
    return m ? Number(m[1]) : undefined;
  } finally {
    client.disconnect();
  }
}

async function endToEndRun(
  mode: EndToEndMode,
  ctx: {
    file: string;
    rows: number;
    run: number;
    postgres: PostgresHarness;
    budgetMs: number;
    stallMs: number;
    batchSize: number;
    log: (line: string) => void;
  },
): Promise<E2eRun> {
  const { rows, postgres, log } = ctx;
  const runStarted = performance.now();
  const database = `${mode}_${ctx.run}_${process.pid}`;
  let etcd: EtcdHandle | undefined;
  let redis: RedisHandle | undefined;
  let nats: NatsHandle | undefined;
  let serverPid: number | undefined;
  let poll: pg.Client | undefined;
  let sampler: ProcessSampler | undefined;
  const procs: CliProcess[] = [];
  try {
    const databaseUrl = await postgres.createDatabase(database);
    // Settings come from the defaults; clear any the bench's own environment would pass on.
    const env: Record<string, string> = {
      CLUSTER_ID: CLUSTER,
      DATABASE_URL: databaseUrl,
      HOST: '127.0.0.1',
      LOG_LEVEL: 'warn',
      BATCH_SIZE: String(ctx.batchSize),
      WORKERS: '',
      QUEUE_MAX_DEPTH: '',
      POLL_INTERVAL: '',
      FLUSH_INTERVAL: '',
      REDIS_TOPICS: '',
    };
    if (mode === 'nexus') {
      installExitHook();
      etcd = await startEtcd({ members: ETCD_MEMBERS, quotaBackendBytes: ETCD_QUOTA_BYTES });
      liveDirs.add(etcd.dir);
      Object.assign(env, { ETCD_ENDPOINTS: etcd.endpointList, REDIS_URL: '', ENABLE_NEXUS: 'true' });
      serverPid = pidsWithCmdline(`--data-dir=${join(etcd.dir, 'm0')}`)[0];
    } else if (mode === 'jetstream') {
      installExitHook();
      nats = await startNatsCluster({ nodes: 1 });
      liveDirs.add(nats.dir);
      Object.assign(env, { NATS_URL: nats.url, REDIS_URL: '', ETCD_ENDPOINTS: '', ENABLE_NEXUS: 'false' });
      serverPid = pidsWithCmdline(join(nats.dir, 'n0.conf'))[0];
    } else {
      installExitHook();
      redis = await startRedis({ appendonly: true });
      liveDirs.add(redis.dir);
      Object.assign(env, { REDIS_URL: redis.url, ETCD_ENDPOINTS: '', ENABLE_NEXUS: 'false' });
      serverPid = await redisPid(redis.url);
      if (serverPid !== undefined) liveServerPids.add(serverPid);
    }

    const queueFlag = mode === 'jetstream' ? ['--queue', 'nats'] : [];
    const collectors: CliProcess[] = [];
    for (let i = 1; i <= COLLECTORS; i++) {
      const c = spawnTracked(['collector', ...queueFlag], { ...env, COLLECTOR_ID: `collector-${i}` });
      collectors.push(c);
      procs.push(c);
    }
    await Promise.all(collectors.map((c) => c.waitFor(/consuming/, 90_000)));

    poll = new pg.Client({ connectionString: databaseUrl });
    await poll.connect();
    const backend = await poll.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const postmaster = readStat(backend.rows[0]!.pid)?.ppid;

    sampler = new ProcessSampler();
    collectors.forEach((c, i) => sampler!.track(`collector-${i + 1}`, c.child.pid));
    sampler.track({ nexus: 'etcd', traditional: 'redis-server', jetstream: 'nats-server' }[mode], serverPid);
    sampler.track('postgres', postmaster, true);

    const started = performance.now();
    const streamer = spawnTracked(['streamer', ...queueFlag, ctx.file], { ...env, SERVICE_ID: 'streamer-1' });
    procs.push(streamer);
    sampler.track('streamer', streamer.child.pid);
    // When the streamer finished publishing on its own (not stopped at the budget).
    let publishedAt: number | undefined;
    let cut = false;
    void streamer.exited.then((code) => {
      if (code === 0 && !cut) publishedAt = performance.now();
    });

    // Stop at the budget (a partial figure), fail when the store stops growing.
    const budgetEnd = started + ctx.budgetMs;
    let stored = 0;
    let lastGrowth = started;
    let lastReport = started;
    let complete = false;
    for (;;) {
      const r = await poll.query<{ n: number }>(
        'SELECT coalesce(sum(sample_count), 0)::float8 AS n FROM batch_ledger',
      );
      const now = performance.now();
      const n = r.rows[0]?.n ?? 0;
      if (n > stored) lastGrowth = now;
      stored = n;
      if (stored >= rows) {
        complete = true;
        break;
      }
      if (now >= budgetEnd) break;
      const streamerCode = streamer.child.exitCode;
      if (streamerCode !== null && streamerCode !== 0) {
        throw new Error(
          `${mode}: the streamer exited with ${streamerCode}:\n${streamer.output().slice(-4000)}`,
        );
      }
      const dead = collectors.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
      if (dead) throw new Error(`${mode}: a collector exited early:\n${dead.output().slice(-4000)}`);
      if (now - lastGrowth > ctx.stallMs) {
        throw new Error(
          `${mode}: stalled: waited ${(ctx.stallMs / 1000).toFixed(0)} s for batch_ledger to grow past ` +
            `${fmtRows(stored)} of ${fmtRows(rows)} rows (streamer ` +
            `${publishedAt === undefined ? 'still publishing' : 'done'}); collector output:\n` +
            collectors.map((c) => c.output().slice(-2000)).join('\n'),
        );
      }
      if (now - lastReport > 10_000) {
        lastReport = now;
        log(
          `bench:   ${mode}: ${fmtRows(stored)} rows stored after ${((now - started) / 1000).toFixed(0)} s`,
        );
      }
      await sleep(100);
    }
    const seconds = (performance.now() - started) / 1000;
    cut = !complete;

    if (complete) {
      const code = await orTimeout(streamer.exited, 30_000, 'timeout');
      if (code !== 0) {
        throw new Error(
          `${mode}: the streamer did not exit cleanly after all rows were stored (${code}):\n` +
            streamer.output().slice(-4000),
        );
      }
      const count = await poll.query<{ n: number }>('SELECT count(*)::float8 AS n FROM samples');
      if (count.rows[0]?.n !== rows) {
        throw new Error(`${mode}: samples holds ${count.rows[0]?.n} rows, expected ${rows}`);
      }
    } else {
      log(
        `bench:   ${mode}: budget of ${(ctx.budgetMs / 1000).toFixed(0)} s reached with ${fmtRows(stored)} of ` +
          `${fmtRows(rows)} rows stored: the figure is a partial rate`,
      );
      sampler.sample(['streamer']);
      await stopProcess(streamer);
    }
    const publishSeconds = publishedAt === undefined ? undefined : (publishedAt - started) / 1000;

    let etcdRun: EtcdRun | undefined;
    const client = etcd
      ? createEtcdClient({ endpoints: etcd.endpointList, requestTimeoutMs: 120_000 })
      : undefined;
    try {
      let before:
        { revision: number; dbSize: number; inUse: number; compacted: number; backlog: number } | undefined;
      if (client) {
        const backlog = await client.getAll().prefix(queueKeys(CLUSTER, 'batches').items).count();
        const status = await client.maintenance.status();
        const marker = await client.get(maintenanceMarkerKey(CLUSTER)).string();
        before = {
          revision: Number(status.header.revision),
          dbSize: Number(status.dbSize),
          inUse: Number(status.dbSizeInUse),
          compacted: marker ? Number((JSON.parse(marker) as { revision?: number }).revision ?? 0) : 0,
          backlog,
        };
      }
      sampler.sample();
      await Promise.all(collectors.map((c) => stopProcess(c)));
      const processes = sampler.stop();
      sampler = undefined;
      if (client && before) {
        const latest = Number((await client.maintenance.status()).header.revision);
        await client.kv.compact({ revision: String(latest), physical: true });
        const compacted = await client.maintenance.status();
        await client.maintenance.defragment();
        const defragged = await client.maintenance.status();
        etcdRun = {
          revisions: before.revision,
          backlogBatches: before.backlog,
          dbSizeMiB: before.dbSize / MiB,
          dbInUseMiB: before.inUse / MiB,
          projectCompactedRevision: before.compacted,
          inUseAfterCompactionMiB: Number(compacted.dbSizeInUse) / MiB,
          sizeAfterDefragMiB: Number(defragged.dbSize) / MiB,
        };
      }
      const warnings = procs.reduce((n, p) => n + warningLines(p.output()), 0);
      return {
        seconds,
        setupSeconds: (started - runStarted) / 1000,
        storedRows: stored,
        complete,
        publishSeconds,
        processes,
        warnings,
        etcd: etcdRun,
      };
    } finally {
      client?.close();
    }
  } finally {
    sampler?.stop();
    await Promise.all(procs.map((p) => stopProcess(p, 5_000)));
    await poll?.end().catch(() => undefined);
    await etcd?.stop();
    await redis?.stop();
    await nats?.stop();
    if (etcd) liveDirs.delete(etcd.dir);
    if (redis) liveDirs.delete(redis.dir);
    if (nats) liveDirs.delete(nats.dir);
    if (serverPid !== undefined) liveServerPids.delete(serverPid);
    const admin = new pg.Client({ connectionString: postgres.connectionString });
    try {
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${pg.escapeIdentifier(database)} WITH (FORCE)`);
    } catch (error) {
      log(`bench:   could not drop database ${database}: ${String(error)}`);
    } finally {
      await admin.end().catch(() => undefined);
    }
  }
}

function processFigures(runs: E2eRun[]): ProcessFigures[] {
  const names = [...new Set(runs.flatMap((r) => r.processes.map((p) => p.name)))];
  const order = ['streamer', 'collector-1', 'collector-2', 'etcd', 'redis-server', 'nats-server', 'postgres'];
  names.sort((a, b) => (order.indexOf(a) + 1 || 99) - (order.indexOf(b) + 1 || 99) || a.localeCompare(b));
  return names.map((name) => {
    const of = runs.flatMap((r) => r.processes.filter((p) => p.name === name));
    return {
      name,
      peakRssMiB: figure(of.map((p) => round(p.peakRssMiB, 1))),
      cpuSeconds: figure(of.map((p) => round(p.cpuSeconds, 2))),
    };
  });
}

function round(n: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

function endToEndFigures(
  rows: number,
  runs: E2eRun[],
  floorRuns: number[] | undefined,
  budgetSeconds: number,
): EndToEndFigures {
  const rates = runs.map((r) => Math.round(r.storedRows / r.seconds));
  const published = runs.flatMap((r) => (r.publishSeconds === undefined ? [] : [r.publishSeconds]));
  const e2e = figure(rates);
  const floor = floorRuns ? figure(floorRuns) : undefined;
  return {
    rowsPerSec: e2e,
    seconds: figure(runs.map((r) => round(r.seconds, 2))),
    complete: runs.map((r) => r.complete),
    storedRows: runs.map((r) => r.storedRows),
    budgetSeconds,
    publishRowsPerSec: published.length > 0 ? figure(published.map((s) => Math.round(rows / s))) : undefined,
    ratioToFloor: floor ? round(e2e.median / floor.median, 3) : undefined,
    ratioToFloorRuns: floorRuns ? rates.map((r, i) => round(r / floorRuns[i]!, 3)) : [],
    processes: processFigures(runs),
    warnings: runs.reduce((n, r) => n + r.warnings, 0),
  };
}

/**
 * Measure the psql `\copy` floor and the nexus and traditional end-to-end pipelines on `file`
 * (see the module comment for exactly what each times). Starts and stops its own PostgreSQL,
 * etcd and Redis servers and CLI processes; nothing is left running when it settles.
 * @throws when a stage fails or exceeds its timeout (the message names what it waited for)
 */
export async function benchPipelines(options: PipelineBenchOptions): Promise<PipelineFigures> {
  const { file, rows, runs } = options;
  const modes = options.modes ?? ['floor', 'nexus', 'traditional', 'jetstream'];
  const log = options.log ?? ((line: string): void => void process.stderr.write(`${line}\n`));
  const budgetSeconds = { ...DEFAULT_BUDGET_SECONDS, ...options.budgetSeconds };
  const stallMs = (options.stallSeconds ?? 60) * 1000;
  const wallStarted = performance.now();
  const loadAtStart = round(loadavg()[0]!, 2);
  const defaults = loadConfig({});
  const batchSize = options.batchSize ?? batchSizeFor(defaults, 'shared');
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-pipelines-'));
  installExitHook();
  liveDirs.add(dir);
  let postgres: PostgresHarness | undefined;
  let floor: (Floor & { conversionSeconds: number }) | undefined;
  try {
    if (modes.some((m) => m !== 'floor')) await ensureBuilt(log);
    log('bench: pipelines: starting PostgreSQL ...');
    postgres = await startPostgres();
    if (modes.includes('floor')) {
      log(`bench: floor: converting ${file} to a narrow CSV (not timed) ...`);
      floor = await prepareFloor(postgres, file, rows, dir);
    }
    const floorRuns: number[] = [];
    const e2e: Record<EndToEndMode, E2eRun[]> = { nexus: [], traditional: [], jetstream: [] };
    for (let i = 0; i < runs; i++) {
      if (floor) {
        log(`bench: floor (psql \\copy), run ${i + 1}/${runs} ...`);
        floorRuns.push(await floor.run());
      }
      for (const mode of ['nexus', 'traditional', 'jetstream'] as const) {
        if (!modes.includes(mode)) continue;
        log(`bench: ${mode} end-to-end, run ${i + 1}/${runs} ...`);
        const budgetMs = budgetSeconds[mode] * 1000;
        const runStarted = performance.now();
        const r = await endToEndRun(mode, {
          file,
          rows,
          run: i + 1,
          postgres,
          budgetMs,
          stallMs,
          batchSize,
          log,
        });
        const wall = (performance.now() - runStarted) / 1000;
        log(
          `bench:   ${mode}: ${fmtRows(r.storedRows / r.seconds)} rows/s (${fmtRows(r.storedRows)} rows in ${r.seconds.toFixed(1)} s` +
            `${r.complete ? '' : ', PARTIAL'}; streamer ${r.publishSeconds === undefined ? 'stopped unfinished' : `done after ${r.publishSeconds.toFixed(1)} s`}; ` +
            `run wall ${wall.toFixed(0)} s: setup ${r.setupSeconds.toFixed(0)} s, teardown ${(wall - r.setupSeconds - r.seconds).toFixed(0)} s)`,
        );
        e2e[mode].push(r);
      }
    }

    const floorRates = floor ? floorRuns.map((s) => Math.round(rows / s)) : undefined;
    const result: PipelineFigures = {
      rows,
      runs,
      settings: {
        batchSize,
        workersPerCollector: defaults.WORKERS,
        queueMaxDepth: queueDepthFor(defaults, 'shared'),
        collectors: COLLECTORS,
        etcdMembers: ETCD_MEMBERS,
        etcdQuotaMiB: ETCD_QUOTA_BYTES / MiB,
        redis: 'appendonly yes, appendfsync always, data under the OS temp dir',
        nats: 'one nats-server 2.9 with JetStream, R1 file-store stream on /dev/shm (test/harness/nats.ts)',
        postgres: 'PostgreSQL 15, fsync=off, full_page_writes=off (test/harness/postgres.ts)',
        cli: 'node dist/cli/main.js, built by the bench (bench/build.ts)',
      },
      wallSeconds: 0,
      loadAverage: { start: loadAtStart, end: 0 },
    };
    if (floor && floorRates) {
      result.floor = {
        what: 'psql \\copy of a pre-converted series_id,ts,value CSV into floor (PK btree + BRIN), spawn to exit',
        rowsPerSec: figure(floorRates),
        seconds: figure(floorRuns.map((s) => round(s, 2))),
        conversionSeconds: round(floor.conversionSeconds, 2),
      };
    }
    if (e2e.nexus.length > 0) {
      const etcdRuns = e2e.nexus.map((r) => r.etcd!);
      const mib = (f: (r: EtcdRun) => number): Figure => figure(etcdRuns.map((r) => round(f(r), 1)));
      result.nexus = {
        ...endToEndFigures(rows, e2e.nexus, floorRates, budgetSeconds.nexus),
        target: 0.5,
        etcd: {
          revisions: figure(etcdRuns.map((r) => r.revisions)),
          backlogBatches: figure(etcdRuns.map((r) => r.backlogBatches)),
          dbSizeMiB: mib((r) => r.dbSizeMiB),
          dbInUseMiB: mib((r) => r.dbInUseMiB),
          projectCompactedRevision: figure(etcdRuns.map((r) => r.projectCompactedRevision)),
          inUseAfterCompactionMiB: mib((r) => r.inUseAfterCompactionMiB),
          sizeAfterDefragMiB: mib((r) => r.sizeAfterDefragMiB),
        },
      };
    }
    if (e2e.traditional.length > 0)
      result.traditional = endToEndFigures(rows, e2e.traditional, floorRates, budgetSeconds.traditional);
    if (e2e.jetstream.length > 0)
      result.jetstream = endToEndFigures(rows, e2e.jetstream, floorRates, budgetSeconds.jetstream);
    result.wallSeconds = round((performance.now() - wallStarted) / 1000, 1);
    result.loadAverage.end = round(loadavg()[0]!, 2);
    return result;
  } finally {
    await floor?.close().catch(() => undefined);
    await postgres?.stop();
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
}

// ---------------------------------------------------------------------------------------------
// table

function spread(f: Figure, fmt: (n: number) => string): string {
  return f.runs.length > 1 ? `${fmt(f.min)}..${fmt(f.max)}` : '';
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => cell.padEnd(widths[c]!))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** A plain-text report of {@link PipelineFigures}, in the style of bench/run.ts's table. */
export function formatPipelineFigures(f: PipelineFigures): string {
  const out: string[] = [];
  out.push(
    `pipelines: ${fmtRows(f.rows)} rows, median of ${f.runs} (min..max), ${f.settings.batchSize}-row batches, ` +
      `${f.settings.collectors} collectors x ${f.settings.workersPerCollector} workers, ${f.settings.etcdMembers} etcd member(s)`,
  );
  const lines: string[][] = [['stage', 'rows/s (median)', 'spread', 'ratio to floor', 'target']];
  const floorRate = f.floor?.rowsPerSec.median;
  if (f.floor) {
    lines.push([
      'psql \\copy, narrow table (floor)',
      fmtRows(floorRate!),
      spread(f.floor.rowsPerSec, fmtRows),
      '1.00x',
      '',
    ]);
  }
  const ratio = (r: number | undefined): string => (r === undefined ? '' : `${r.toFixed(2)}x`);
  const endToEnd = (label: string, e: EndToEndFigures, target: string): void => {
    const partial = e.complete.filter((c) => !c).length;
    lines.push([
      `${label}${partial > 0 ? ` (${partial} of ${e.complete.length} runs PARTIAL)` : ''}`,
      fmtRows(e.rowsPerSec.median),
      spread(e.rowsPerSec, fmtRows),
      ratio(e.ratioToFloor),
      target,
    ]);
    const p = e.publishRowsPerSec;
    lines.push([
      '  streamer alone (spawn to exit)',
      p === undefined ? 'did not finish' : fmtRows(p.median),
      p === undefined ? '' : spread(p, fmtRows),
      '',
      '',
    ]);
  };
  if (f.nexus) {
    const n = f.nexus;
    endToEnd(
      `nexus: streamer -> etcd -> ${f.settings.collectors} collectors -> PG`,
      n,
      n.ratioToFloor === undefined
        ? ''
        : `>= ${n.target.toFixed(2)}x ${n.ratioToFloor >= n.target ? 'met' : 'MISSED'}`,
    );
  }
  if (f.traditional) {
    endToEnd(
      `traditional: streamer -> Redis -> ${f.settings.collectors} collectors -> PG`,
      f.traditional,
      '',
    );
  }
  if (f.jetstream) {
    endToEnd(
      `jetstream: streamer -> NATS JetStream -> ${f.settings.collectors} collectors -> PG`,
      f.jetstream,
      '',
    );
  }
  out.push(table(lines));
  for (const [name, e] of [
    ['nexus', f.nexus],
    ['traditional', f.traditional],
    ['jetstream', f.jetstream],
  ] as const) {
    if (e === undefined || e.complete.every(Boolean)) continue;
    out.push(
      `${name}: PARTIAL runs were stopped at the ${e.budgetSeconds} s budget; their rate is rows stored ` +
        `(${e.storedRows.map(fmtRows).join(', ')} of ${fmtRows(f.rows)}) / seconds`,
    );
  }

  const procLines: string[][] = [
    ['mode', 'process', 'peak RSS MiB', 'spread', 'CPU s (timed window)', 'spread'],
  ];
  const mib = (n: number): string => n.toFixed(0);
  const sec = (n: number): string => n.toFixed(1);
  for (const [mode, e] of [
    ['nexus', f.nexus],
    ['traditional', f.traditional],
    ['jetstream', f.jetstream],
  ] as const) {
    for (const p of e?.processes ?? []) {
      procLines.push([
        mode,
        p.name,
        mib(p.peakRssMiB.median),
        spread(p.peakRssMiB, mib),
        sec(p.cpuSeconds.median),
        spread(p.cpuSeconds, sec),
      ]);
    }
  }
  if (procLines.length > 1) {
    out.push('');
    out.push(table(procLines));
    out.push(
      '(postgres: peak of its largest process, shared buffers it touched included; CPU of all its processes)',
    );
  }
  if (f.nexus) {
    const e = f.nexus.etcd;
    const m = (x: Figure): string =>
      `${x.median.toFixed(0)}${x.runs.length > 1 ? ` (${x.min.toFixed(0)}..${x.max.toFixed(0)})` : ''}`;
    out.push('');
    out.push(
      `etcd at the end of a run (median): ${fmtRows(e.revisions.median)} revisions written, ` +
        `${fmtRows(e.backlogBatches.median)} batches still queued; db ${m(e.dbSizeMiB)} MiB allocated, ` +
        `${m(e.dbInUseMiB)} MiB in use (the collectors' leader had compacted to revision ` +
        `${fmtRows(e.projectCompactedRevision.median)})\n` +
        `  then, collectors stopped: compacted to the latest revision ${m(e.inUseAfterCompactionMiB)} MiB in use; ` +
        `defragmented ${m(e.sizeAfterDefragMiB)} MiB allocated`,
    );
  }
  const warnings = (f.nexus?.warnings ?? 0) + (f.traditional?.warnings ?? 0) + (f.jetstream?.warnings ?? 0);
  if (warnings > 0) out.push(`pipeline processes logged ${warnings} warning line(s)`);
  out.push(
    `wall time of the pipeline bench: ${f.wallSeconds.toFixed(0)} s; load average ` +
      `${f.loadAverage.start.toFixed(1)} at the start, ${f.loadAverage.end.toFixed(1)} at the end`,
  );
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// standalone

function modesArg(): PipelineMode[] | undefined {
  const i = process.argv.indexOf('--modes');
  if (i === -1) return undefined;
  const modes = (process.argv[i + 1] ?? '').split(',').filter(Boolean);
  for (const m of modes) {
    if (m !== 'floor' && m !== 'nexus' && m !== 'traditional' && m !== 'jetstream') {
      throw new Error(`--modes takes floor,nexus,traditional,jetstream; got "${m}"`);
    }
  }
  return modes as PipelineMode[];
}

async function main(): Promise<void> {
  const rows = intArg('--rows', 1_000_000);
  const runs = intArg('--runs', 3);
  const modes = modesArg();
  const budgetSeconds = {
    nexus: intArg('--nexus-budget-s', DEFAULT_BUDGET_SECONDS.nexus),
    traditional: intArg('--traditional-budget-s', DEFAULT_BUDGET_SECONDS.traditional),
    jetstream: intArg('--jetstream-budget-s', DEFAULT_BUDGET_SECONDS.jetstream),
  };
  // Exit through process.exit so the harnesses' 'exit' hooks stop their servers.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.once(signal, () => {
      process.stderr.write(`bench: ${signal}, stopping every server and process started ...\n`);
      process.exit(130);
    });
  }
  const dir = mkdtempSync(join(tmpdir(), 'nexus-bench-data-'));
  installExitHook();
  liveDirs.add(dir);
  const file = join(dir, 'bench.csv');
  try {
    process.stderr.write(`bench: generating ${fmtRows(rows)} rows ...\n`);
    await writeDcgmCsv(file, { hosts: 125, gpusPerHost: 8, rows, seed: 7 });
    const batchSize = process.argv.includes('--batch-size') ? intArg('--batch-size', 0) : undefined;
    const figures = await benchPipelines({ file, rows, runs, modes, budgetSeconds, batchSize });
    console.log(
      `\nnexus-telemetry pipeline bench: ${fmtRows(rows)} rows (${(statSync(file).size / MiB).toFixed(0)} MiB CSV), ` +
        `${cpus().length} cores, node ${process.version}`,
    );
    console.log(formatPipelineFigures(figures));
  } finally {
    rmSync(dir, { recursive: true, force: true });
    liveDirs.delete(dir);
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
