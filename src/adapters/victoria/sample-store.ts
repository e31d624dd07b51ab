/**
 * Sample store on a remote TSDB (VictoriaMetrics as the reference; any store that accepts
 * Prometheus remote write and serves `/api/v1/export`): samples go to the TSDB through remote
 * write and are read back through its export API; the batch ledger and the dead letters stay in
 * an SQL store (PostgreSQL, or PGlite) composed in. docs/storage-victoria.md has the details.
 *
 * `writeBatch`, in one process one batch at a time:
 * 1. the ledger is asked whether the batch id is known: then nothing is written (`duplicate`);
 * 2. samples the TSDB cannot hold (time outside its retention or more than 2 days ahead, a
 *    non-finite value) become `unstorable_row` dead letters;
 * 3. the stored samples of the batch's series in its time range are read, so identical replays
 *    are skipped and a different value at a stored (series, time) is a `conflicting_duplicate`;
 * 4. the new samples are remote-written and flushed (made searchable);
 * 5. they are made durable: VictoriaMetrics holds fresh samples in memory for about 5 s, and a
 *    snapshot (created and deleted at once) writes them to disk; concurrent batches share one;
 * 6. the ledger entry and the dead letters commit in one SQL transaction. A crash between 4 and 6
 *    leaves samples without a ledger entry: the redelivery finds them stored and adds nothing.
 * Steps 1-4 run one batch at a time per process; 5 and 6 overlap with the next batches. A TSDB
 * without the snapshot API (a VictoriaMetrics cluster's vminsert, Mimir, ...) skips step 5: its
 * own replication is what makes an acknowledged write durable there.
 * Two processes writing the same natural key at once may both count it as inserted (the TSDB
 * keeps one copy when it dedups identical samples); a conflicting value written by another
 * process in that instant is not refused. Rollups (1m/1h) are computed from the raw samples at
 * read time. Retention is the TSDB's own (`-retentionPeriod`).
 */
import type { Batch, DeadLetter, Sample } from '../../domain/types.js';
import { NexusError } from '../../errors.js';
import {
  type SampleAggregate,
  type SampleQuery,
  type SampleStore,
  type SelectedSeries,
  type SeriesSelect,
  type StoredDeadLetter,
  type StoredGpu,
  type StoredSample,
  type StoredSeries,
  type WriteResult,
  chooseResolution,
  countSelectedSamples,
  labelsMatch,
} from '../../ports/sample-store.js';
import { compareGpus } from '../../storage/queries.js';
import { type RefusedSample, refusalDeadLetters, unstorableSampleProblem } from '../../storage/refusals.js';
import type { SqlExecutor } from '../../storage/sql-executor.js';
import { type ExportedSeries, RemoteTsdbClient, type WriteSeries } from './client.js';
import { identityOf, regexLiteral, remoteLabels, selector, seriesIdOf, seriesKeyOf } from './labels.js';

const DAY_MS = 86_400_000;
/** VictoriaMetrics refuses samples more than 2 days ahead of its clock; keep an hour's margin. */
const MAX_AHEAD_MS = 2 * DAY_MS - 3_600_000;
/** VictoriaMetrics' default `-retentionPeriod`: 1 month. */
const DEFAULT_RETENTION_MS = 31 * DAY_MS;
/** Most samples in one remote-write request. */
const WRITE_CHUNK = 20_000;
/** Default `limit` of querySamples. */
const DEFAULT_LIMIT = 1000;

/** Settings of {@link createVictoriaSampleStore}. */
export interface VictoriaSampleStoreOptions {
  /** Remote write endpoint, e.g. `http://vm:8428/api/v1/write`. */
  writeUrl: string;
  /** Base URL of the read API (default: `writeUrl` without `/api/v1/write`). */
  readUrl?: string;
  bearerToken?: string;
  /**
   * How far back the TSDB keeps samples (ms). Default: read from VictoriaMetrics' `/flags`
   * (`-retentionPeriod`) at migrate(), else 1 month.
   */
  retentionMs?: number;
  /** Per-request timeout (default 30 s). */
  timeoutMs?: number;
}

/**
 * Parse a VictoriaMetrics `-retentionPeriod` (`12`, months; or with `h`, `d`, `w`, `y`) to ms.
 * @returns undefined when the text is not one
 */
export function parseRetentionPeriod(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([hdwy]?)$/.exec(text.trim());
  if (m === null) return undefined;
  const unit = { h: 3_600_000, d: DAY_MS, w: 7 * DAY_MS, y: 365 * DAY_MS, '': 31 * DAY_MS }[m[2] as 'h'];
  return Number(m[1]) * unit;
}

/** Values equal within what the TSDB keeps (VictoriaMetrics stores about 12 significant digits). */
export function sameStoredValue(a: number, b: number): boolean {
  return a === b || Math.abs(a - b) <= 1e-10 * Math.max(Math.abs(a), Math.abs(b));
}

/**
 * The SQL store that keeps the ledger and the dead letters (a PostgreSQL or PGlite
 * `SqlSampleStore`): its writes with no samples, and `withSql` for the ledger lookup.
 */
export type LedgerStore = Pick<
  SampleStore,
  'migrate' | 'writeBatch' | 'listDeadLetters' | 'ping' | 'close'
> & {
  withSql<T>(operation: string, fn: (db: SqlExecutor) => Promise<T>): Promise<T>;
};

/** True when `store` can keep the ledger (an SQL store with `withSql`). */
function isLedgerStore(store: SampleStore): store is SampleStore & LedgerStore {
  return typeof (store as Partial<LedgerStore>).withSql === 'function';
}

/** One series read back: identity, id and samples ascending. */
interface ReadSeries {
  series: StoredSeries;
  identity: string;
  timestamps: number[];
  values: number[];
}

/** A SampleStore with samples in a remote TSDB and the ledger in `ledger` (see the module comment). */
export class VictoriaSampleStore implements SampleStore {
  readonly #client: RemoteTsdbClient;
  readonly #ledger: LedgerStore;
  readonly #inFlight = new Set<Promise<unknown>>();
  #retentionMs: number | undefined;
  #writeChain: Promise<unknown> = Promise.resolve();
  /** Writes in flight by batch id. */
  readonly #writing = new Map<string, Promise<WriteResult>>();
  /** Persists the TSDB's in-memory samples, one snapshot for every write that finished before it. */
  readonly #persist: GroupCommit;
  #closing: Promise<void> | undefined;

  constructor(options: VictoriaSampleStoreOptions, ledger: LedgerStore) {
    this.#client = new RemoteTsdbClient({
      writeUrl: options.writeUrl,
      readUrl: options.readUrl ?? options.writeUrl.replace(/\/+$/, '').replace(/\/api\/v1\/write$/, ''),
      bearerToken: options.bearerToken,
      timeoutMs: options.timeoutMs,
    });
    this.#ledger = ledger;
    this.#persist = new GroupCommit(async () => {
      await this.#client.persist();
    });
    this.#retentionMs = options.retentionMs;
  }

  #run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closing !== undefined) {
      return Promise.reject(new NexusError('STORE_CLOSED', 'remote-write sample store is closed'));
    }
    const p = fn();
    this.#inFlight.add(p);
    void p.then(
      () => this.#inFlight.delete(p),
      () => this.#inFlight.delete(p),
    );
    return p;
  }

  /** [oldest, newest] sample time the TSDB holds now. */
  #window(nowMs = Date.now()): [number, number] {
    const retention = this.#retentionMs ?? DEFAULT_RETENTION_MS;
    return [Math.max(DAY_MS, nowMs - retention + DAY_MS), nowMs + MAX_AHEAD_MS];
  }

  migrate(): Promise<void> {
    return this.#run(async () => {
      await this.#ledger.migrate();
      if (this.#retentionMs === undefined) {
        const flags = await this.#client.flags();
        const period = flags?.retentionPeriod;
        this.#retentionMs = period === undefined ? DEFAULT_RETENTION_MS : parseRetentionPeriod(period);
      }
    });
  }

  writeBatch(batch: Batch): Promise<WriteResult> {
    return this.#run(async () => {
      // The same batch id already being written here: wait for it, then it is a duplicate.
      const earlier = this.#writing.get(batch.id);
      if (earlier !== undefined && (await earlier.then(() => true).catch(() => false))) {
        return { duplicate: true, inserted: 0, deadLetters: 0, unstorable: 0, conflicts: 0 };
      }
      const write = this.#write(batch);
      this.#writing.set(batch.id, write);
      try {
        return await write;
      } finally {
        if (this.#writing.get(batch.id) === write) this.#writing.delete(batch.id);
      }
    });
  }

  async #write(batch: Batch): Promise<WriteResult> {
    // Steps 1-4 one batch at a time per process: the read-compare-write sees every earlier batch.
    const staged = this.#writeChain.then(() => this.#stage(batch));
    this.#writeChain = staged.catch(() => undefined);
    const { result, sent, letters } = await staged;
    if (result.duplicate) return result;
    // Durable before the ledger says so; concurrent batches share one snapshot.
    if (sent) await this.#persist.run();
    const ledger = await this.#ledger.writeBatch({
      id: batch.id,
      source: batch.source,
      samples: [],
      deadLetters: letters,
    });
    if (ledger.duplicate) return ledger; // another process committed this batch id meanwhile
    return { ...result, deadLetters: ledger.deadLetters };
  }

  /** Ledger lookup, refusals, read-compare, remote write and flush of one batch. */
  async #stage(batch: Batch): Promise<{ result: WriteResult; sent: boolean; letters: DeadLetter[] }> {
    const known = await this.#ledger.withSql('ledger lookup', (db) =>
      db.query('SELECT 1 FROM batch_ledger WHERE batch_id = $1', [batch.id]),
    );
    if (known.rowCount > 0) {
      return {
        result: { duplicate: true, inserted: 0, deadLetters: 0, unstorable: 0, conflicts: 0 },
        sent: false,
        letters: [],
      };
    }

    const [oldest, newest] = this.#window();
    const refused: RefusedSample[] = [];
    const candidates: number[] = [];
    batch.samples.forEach((s, index) => {
      const problem =
        unstorableSampleProblem(s) ??
        (s.timestampMs < oldest || s.timestampMs > newest
          ? `timestamp ${s.timestampMs} ms is outside what the TSDB keeps (${new Date(oldest).toISOString()} to ${new Date(newest).toISOString()}: its retention, at most 2 days ahead)`
          : undefined);
      if (problem === undefined) candidates.push(index);
      else refused.push({ index, reason: 'unstorable_row', detail: problem });
    });

    const stored = await this.#storedValues(batch.samples, candidates);
    const pending = new Map<string, { key: Sample; labels: WriteSeries }>();
    let inserted = 0;
    for (const index of candidates) {
      const s = batch.samples[index]!;
      const identity = identityOf(s);
      const naturalKey = `${identity}@${s.timestampMs}`;
      const before = stored.get(naturalKey);
      if (before !== undefined) {
        if (!sameStoredValue(before, s.value)) {
          refused.push({
            index,
            reason: 'conflicting_duplicate',
            detail: `stored value ${before}, refused value ${s.value} for ${s.metric} of ${s.uuid} (${s.hostname}) at ${new Date(s.timestampMs).toISOString()}`,
          });
        }
        continue;
      }
      stored.set(naturalKey, s.value);
      let entry = pending.get(identity);
      if (entry === undefined) {
        entry = { key: s, labels: { labels: remoteLabels(s), timestamps: [], values: [] } };
        pending.set(identity, entry);
      }
      entry.labels.timestamps.push(s.timestampMs);
      entry.labels.values.push(s.value);
      inserted += 1;
    }
    const series = [...pending.values()].map((p) => p.labels);
    await this.#send(series);

    refused.sort((a, b) => a.index - b.index);
    const conflicts = refused.filter((r) => r.reason === 'conflicting_duplicate').length;
    const letters = [...batch.deadLetters, ...refusalDeadLetters(batch, refused)];
    return {
      result: {
        duplicate: false,
        inserted,
        deadLetters: letters.length,
        unstorable: refused.length - conflicts,
        conflicts,
        ...(refused.length > 0 ? { refusedSamples: refused.map((r) => r.index) } : {}),
      },
      sent: series.length > 0,
      letters,
    };
  }

  /** Remote-write `series` in requests of at most {@link WRITE_CHUNK} samples, then flush. */
  async #send(series: WriteSeries[]): Promise<void> {
    if (series.length === 0) return;
    let chunk: WriteSeries[] = [];
    let size = 0;
    for (const s of series) {
      for (let i = 0; i < s.timestamps.length; i += WRITE_CHUNK) {
        const part = {
          labels: s.labels,
          timestamps: s.timestamps.slice(i, i + WRITE_CHUNK),
          values: s.values.slice(i, i + WRITE_CHUNK),
        };
        if (size + part.timestamps.length > WRITE_CHUNK && chunk.length > 0) {
          await this.#client.write(chunk);
          chunk = [];
          size = 0;
        }
        chunk.push(part);
        size += part.timestamps.length;
      }
    }
    if (chunk.length > 0) await this.#client.write(chunk);
    await this.#client.flush();
  }

  /** Stored values of the candidates' series in their time range, by `identity@time`. */
  async #storedValues(
    samples: readonly Sample[],
    candidates: readonly number[],
  ): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (candidates.length === 0) return out;
    const identities = new Set<string>();
    const uuids = new Set<string>();
    const metrics = new Set<string>();
    let start = Infinity;
    let end = -Infinity;
    for (const i of candidates) {
      const s = samples[i]!;
      identities.add(identityOf(s));
      uuids.add(s.uuid);
      metrics.add(s.metric);
      start = Math.min(start, s.timestampMs);
      end = Math.max(end, s.timestampMs);
    }
    const match = selector([
      ['__name__', '=~', [...metrics].map(regexLiteral).join('|')],
      ['UUID', '=~', [...uuids].map(regexLiteral).join('|')],
    ]);
    for (const r of await this.#read(match, start, end)) {
      if (!identities.has(r.identity)) continue;
      r.timestamps.forEach((t, i) => out.set(`${r.identity}@${t}`, r.values[i]!));
    }
    return out;
  }

  /** Export `match` in [startMs, endMs] and map each series back to its identity. */
  async #read(match: string, startMs: number, endMs: number, signal?: AbortSignal): Promise<ReadSeries[]> {
    const [oldest, newest] = this.#window();
    const from = Math.max(startMs, oldest - DAY_MS);
    const to = Math.min(endMs, newest + DAY_MS);
    if (from > to) return [];
    const exported: ExportedSeries[] = await this.#client.export(match, from, to, signal);
    const bySeries = new Map<string, ReadSeries>();
    for (const e of exported) {
      const key = seriesKeyOf(e.metric);
      const identity = identityOf(key);
      let r = bySeries.get(identity);
      if (r === undefined) {
        r = { series: { ...key, id: seriesIdOf(identity) }, identity, timestamps: [], values: [] };
        bySeries.set(identity, r);
      }
      r.timestamps.push(...e.timestamps);
      r.values.push(...e.values);
    }
    for (const r of bySeries.values()) sortSamples(r);
    return [...bySeries.values()];
  }

  querySamples(query: SampleQuery): Promise<StoredSample[]> {
    return this.#run(async () => {
      const limit = query.limit ?? DEFAULT_LIMIT;
      const resolution = chooseResolution(query);
      const order = query.order ?? 'desc';
      if (limit <= 0) return [];
      const matchers: [string, '=' | '=~', string][] = [];
      if ('uuid' in query.gpu) matchers.push(['UUID', '=', query.gpu.uuid]);
      else {
        matchers.push(['cluster', '=', query.gpu.clusterId]);
        matchers.push(['Hostname', '=', query.gpu.hostname]);
        matchers.push(['gpu', '=', query.gpu.gpuId]);
      }
      if (query.metrics !== undefined && query.metrics.length > 0) {
        matchers.push(['__name__', '=~', query.metrics.map(regexLiteral).join('|')]);
      }
      matchers.push(['GPU_I_ID', '=', query.migInstance ?? '']);
      const bucketMs = resolution === '1m' ? 60_000 : resolution === '1h' ? 3_600_000 : 0;
      const start =
        query.startMs === undefined
          ? -Infinity
          : bucketMs > 0
            ? floorTo(query.startMs, bucketMs)
            : query.startMs;
      const end =
        query.endMs === undefined ? Infinity : bucketMs > 0 ? query.endMs + bucketMs - 1 : query.endMs;
      const series = (await this.#read(selector(matchers), start, end)).filter((r) =>
        'uuid' in query.gpu ? true : r.series.clusterId === query.gpu.clusterId,
      );
      // Ties on time are ordered by metric, then identity: rank the series once, sort references.
      const ranked = series
        .map((r) => ({ r, metric: r.series.metric }))
        .sort((a, b) => compareText(a.metric, b.metric) || compareText(a.r.identity, b.r.identity));
      const points: { t: number[]; v: number[]; a?: SampleAggregate[] }[] = ranked.map(({ r }) => {
        if (bucketMs === 0) return { t: r.timestamps, v: r.values };
        const buckets = rollup(r.timestamps, r.values, bucketMs).filter(
          ([bucket]) => query.endMs === undefined || bucket <= query.endMs,
        );
        return { t: buckets.map(([b]) => b), v: buckets.map(([, a]) => a.avg), a: buckets.map(([, a]) => a) };
      });
      const refs: [time: number, rank: number, index: number][] = [];
      points.forEach((p, rank) => p.t.forEach((t, i) => refs.push([t, rank, i])));
      refs.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
      if (order === 'desc') refs.reverse();
      return refs.slice(0, limit).map(([t, rank, i]) => {
        const { id: _id, ...key } = ranked[rank]!.r.series;
        const p = points[rank]!;
        return p.a === undefined
          ? { ...key, timestampMs: t, value: p.v[i]! }
          : { ...key, timestampMs: t, value: p.v[i]!, aggregate: p.a[i]! };
      });
    });
  }

  listGpus(clusterId?: string): Promise<StoredGpu[]> {
    return this.#run(async () => {
      const gpus = new Map<string, StoredGpu>();
      for (const r of await this.#readAll(clusterId)) {
        const s = r.series;
        if (clusterId !== undefined && s.clusterId !== clusterId) continue;
        const gpu = {
          clusterId: s.clusterId,
          hostname: s.hostname,
          gpuId: s.gpuId,
          uuid: s.uuid,
          device: s.device,
          modelName: s.modelName,
        };
        gpus.set(JSON.stringify([gpu.clusterId, gpu.hostname, gpu.gpuId, gpu.uuid]), gpu);
      }
      return [...gpus.values()].sort(compareGpus);
    });
  }

  /** Every series (of one cluster) with all its samples the TSDB holds. */
  #readAll(clusterId?: string): Promise<ReadSeries[]> {
    const [oldest, newest] = this.#window();
    const match = selector(clusterId === undefined ? [] : [['cluster', '=', clusterId]]);
    return this.#read(match, oldest - DAY_MS, newest + DAY_MS);
  }

  latestSamples(clusterId?: string): Promise<StoredSample[]> {
    return this.#run(async () => {
      const rows = (await this.#readAll(clusterId)).filter(
        (r) => r.timestamps.length > 0 && (clusterId === undefined || r.series.clusterId === clusterId),
      );
      rows.sort(
        (a, b) =>
          compareText(a.series.clusterId, b.series.clusterId) ||
          compareText(a.series.hostname, b.series.hostname) ||
          compareText(a.series.gpuId, b.series.gpuId) ||
          compareText(a.series.metric, b.series.metric) ||
          a.series.id - b.series.id,
      );
      return rows.map((r) => {
        const { id: _id, ...key } = r.series;
        const last = r.timestamps.length - 1;
        return { ...key, timestampMs: r.timestamps[last]!, value: r.values[last]! };
      });
    });
  }

  selectSeries(select: SeriesSelect, signal?: AbortSignal): Promise<SelectedSeries[]> {
    return this.#run(async () => {
      signal?.throwIfAborted();
      const f = select.filter;
      if (f.metrics !== undefined && f.metrics.length === 0) return [];
      const matchers: [string, '=' | '=~', string][] = [];
      if (f.metrics !== undefined) matchers.push(['__name__', '=~', f.metrics.map(regexLiteral).join('|')]);
      if (f.metricPrefix !== undefined) {
        matchers.push(['__name__', '=~', `${regexLiteral(f.metricPrefix)}.*`]);
      }
      const columns = [
        ['clusterId', 'cluster'],
        ['hostname', 'Hostname'],
        ['gpuId', 'gpu'],
        ['uuid', 'UUID'],
        ['device', 'device'],
        ['modelName', 'modelName'],
        ['container', 'container'],
        ['pod', 'pod'],
        ['namespace', 'namespace'],
      ] as const;
      for (const [field, label] of columns) {
        const value = f[field];
        if (value !== undefined) matchers.push([label, '=', value]);
      }
      const found = await this.#read(selector(matchers), select.startMs, select.endMs, signal);
      const chosen = found
        .filter((r) => r.timestamps.length > 0)
        .filter((r) => columns.every(([field]) => f[field] === undefined || r.series[field] === f[field]))
        .filter((r) => labelsMatch(r.series.labels, f.labels))
        .filter((r) => (select.accept === undefined ? true : select.accept(r.series)))
        .sort((a, b) => a.series.id - b.series.id);
      const out = chosen.map((r) =>
        select.latestOnly === true
          ? { series: r.series, timestamps: r.timestamps.slice(-1), values: r.values.slice(-1) }
          : { series: r.series, timestamps: r.timestamps, values: r.values },
      );
      if (select.maxSamples !== undefined && select.latestOnly !== true) {
        const total = countSelectedSamples(out);
        if (total > select.maxSamples) {
          throw new NexusError(
            'READ_BUDGET_EXCEEDED',
            `the selection holds more than ${select.maxSamples} samples in the window; narrow the selectors or the time range`,
            { details: { maxSamples: select.maxSamples } },
          );
        }
      }
      return out;
    });
  }

  /**
   * Run `fn` on the ledger's database, for modules that keep their own tables there (the API token
   * store, src/auth/token-store.ts).
   */
  withSql<T>(operation: string, fn: (db: SqlExecutor) => Promise<T>): Promise<T> {
    return this.#run(() => this.#ledger.withSql(operation, fn));
  }

  listDeadLetters(options?: { limit?: number; source?: string }): Promise<StoredDeadLetter[]> {
    return this.#run(() => this.#ledger.listDeadLetters(options));
  }

  countSamples(): Promise<number> {
    return this.#run(async () => {
      const [oldest, newest] = this.#window();
      const at = newest + DAY_MS;
      const windowS = Math.floor((at - oldest) / 1000); // a window reaching 1970-01-01 counts nothing
      const result = await this.#client.query(`sum(count_over_time({__name__!=""}[${windowS}s]))`, at);
      return result[0]?.value ?? 0;
    });
  }

  ping(): Promise<void> {
    return this.#run(async () => {
      await this.#client.health();
      await this.#ledger.ping();
    });
  }

  /** Stop accepting calls, wait for the ones in flight, close the ledger store. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#inFlight]);
      await this.#ledger.close();
    })();
    return this.#closing;
  }
}

/**
 * Runs `task` for many callers at once: a call waits for a run that starts after it (a run in
 * progress may have started before the caller's data was written), and every caller waiting then
 * shares that run.
 */
export class GroupCommit {
  readonly #task: () => Promise<void>;
  #current: Promise<void> | undefined;
  #next: Promise<void> | undefined;

  constructor(task: () => Promise<void>) {
    this.#task = task;
  }

  run(): Promise<void> {
    if (this.#current === undefined) {
      const current = this.#task().finally(() => {
        if (this.#current === current) this.#current = undefined;
      });
      this.#current = current;
      return current;
    }
    this.#next ??= this.#current
      .catch(() => undefined)
      .then(() => {
        this.#next = undefined;
        return this.run();
      });
    return this.#next;
  }
}

function floorTo(ms: number, bucketMs: number): number {
  return Math.floor(ms / bucketMs) * bucketMs;
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Sort a series' samples ascending, dropping exact repeats of a time (a TSDB without dedup). */
function sortSamples(r: { timestamps: number[]; values: number[] }): void {
  const order = r.timestamps.map((_, i) => i).sort((a, b) => r.timestamps[a]! - r.timestamps[b]!);
  const ts: number[] = [];
  const vs: number[] = [];
  for (const i of order) {
    if (ts.length > 0 && ts[ts.length - 1] === r.timestamps[i]) continue;
    ts.push(r.timestamps[i]!);
    vs.push(r.values[i]!);
  }
  r.timestamps = ts;
  r.values = vs;
}

/** Buckets of `bucketMs` over ascending samples: bucket start -> min/max/avg/count/last. */
function rollup(timestamps: number[], values: number[], bucketMs: number): [number, SampleAggregate][] {
  const out: [number, SampleAggregate][] = [];
  let sum = 0;
  for (let i = 0; i < timestamps.length; i++) {
    const bucket = floorTo(timestamps[i]!, bucketMs);
    const v = values[i]!;
    const current = out.at(-1);
    if (current === undefined || current[0] !== bucket) {
      if (current !== undefined) current[1].avg = sum / current[1].count;
      out.push([bucket, { min: v, max: v, avg: v, count: 1, last: v }]);
      sum = v;
    } else {
      const a = current[1];
      a.min = Math.min(a.min, v);
      a.max = Math.max(a.max, v);
      a.count += 1;
      a.last = v;
      sum += v;
    }
  }
  const last = out.at(-1);
  if (last !== undefined) last[1].avg = sum / last[1].count;
  return out;
}

/**
 * A remote-write sample store over an already created SQL store for the ledger and dead letters.
 * Call `migrate()` before use.
 */
export function createVictoriaSampleStore(
  options: VictoriaSampleStoreOptions,
  ledger: SampleStore,
): VictoriaSampleStore {
  if (!isLedgerStore(ledger)) {
    throw new NexusError(
      'CONFIG_INVALID',
      'the remote-write sample store keeps its ledger in an SQL store (PostgreSQL or PGlite)',
    );
  }
  return new VictoriaSampleStore(options, ledger);
}
