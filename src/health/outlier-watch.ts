/**
 * The outlier watch: once a minute, in the process that evaluates the alert rules (the embedded
 * `start`, or the nexus maintenance leader), it runs the peer-outlier scan of src/analytics over
 * the last WINDOW of samples and keeps one mark per GPU that is out of line now (its stretch reaches
 * the last minutes) under `.../gpus/{g}/outlier` in the live hierarchy. Marks are written only when
 * a GPU becomes an outlier or its signal changes, and deleted when it is back in line, so each
 * change is one GPU_OUTLIER event; readers show the mark as a PEER_OUTLIER health reason.
 *
 * A mark is derived data: writes are not fenced (two leaders for a moment write the same marks).
 */
import { peerOutliers, type OutlierRow } from '../analytics/outliers.js';
import { clusterKey, outlierKey, parseOutlierKey } from '../hierarchy/paths.js';
import type { Coordination } from '../ports/coordination.js';
import type { SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';
import { parseOutlierMark, type OutlierMark } from './outlier-mark.js';

const MINUTE = 60_000;

/** Options of {@link OutlierWatch}. */
export interface OutlierWatchOptions {
  store: SampleStore;
  coordination: Coordination;
  /** Only GPUs of this cluster are marked (the evaluator's). */
  clusterId: string;
  logger: Logger;
  /** Robust deviations beyond which a minute is out of line (default 5, as the analytics API). */
  k?: number;
  /** Shortest stretch that makes a mark (default 10 minutes). */
  minDurationMs?: number;
  /** Samples scanned back from now (default 30 minutes). */
  windowMs?: number;
  /** A stretch is ongoing while it ends within this of now (default 2 minutes: late scrapes). */
  graceMs?: number;
  clock?: () => number;
  /** Nexus mode: only the leader marks. */
  isLeader?: () => boolean;
}

/** What one round changed. */
export interface OutlierRound {
  /** GPUs now marked (`host/gpu`), including unchanged ones. */
  marked: string[];
  written: number;
  cleared: number;
}

/** Keeps the outlier marks of one cluster current. */
export class OutlierWatch {
  /** Marks in the store, by key (read once at the first round). */
  private known: Map<string, OutlierMark> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: OutlierWatchOptions) {}

  /** Run a round every minute (the first at once). */
  start(): void {
    if (this.timer) return;
    const tick = (): void => {
      this.running = this.runAt().catch((error: unknown) =>
        this.o.logger.warn({ err: error }, 'outlier watch round failed; retrying in a minute'),
      );
    };
    this.timer = setInterval(tick, MINUTE);
    this.timer.unref();
    tick();
  }

  /** Stop the timer and wait for a running round. */
  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** One round at the clock's time (tests call it directly). */
  async runAt(nowMs: number = (this.o.clock ?? Date.now)()): Promise<OutlierRound> {
    if (this.o.isLeader !== undefined && !this.o.isLeader()) {
      this.known = undefined; // another process marks; read afresh if this one leads again
      return { marked: [], written: 0, cleared: 0 };
    }
    const end = Math.floor(nowMs / MINUTE) * MINUTE;
    const rows = await peerOutliers(this.o.store, {
      startMs: end - (this.o.windowMs ?? 30 * MINUTE),
      endMs: end,
      mode: 'raw',
      k: this.o.k ?? 5,
      minDurationMs: this.o.minDurationMs ?? 10 * MINUTE,
    });
    const wanted = new Map<string, OutlierMark>();
    for (const row of rows) {
      if (row.clusterId !== this.o.clusterId || row.endMs < end - (this.o.graceMs ?? 2 * MINUTE)) continue;
      const key = outlierKey(row.clusterId, row.hostname, row.gpuId);
      const mark = markOf(row, nowMs);
      const other = wanted.get(key);
      // One mark per GPU: the signal that departs most.
      if (!other || mark.maxScore > other.maxScore) wanted.set(key, mark);
    }
    const known = this.known ?? (await this.readMarks());
    let written = 0;
    let cleared = 0;
    for (const [key, mark] of wanted) {
      // An ongoing mark stays as first written: a stretch longer than the window would otherwise
      // start later at every round (and make an event a minute).
      const before = known.get(key);
      if (before && before.signal === mark.signal) continue;
      await this.o.coordination.put(key, JSON.stringify(mark));
      known.set(key, mark);
      written += 1;
    }
    for (const key of [...known.keys()]) {
      if (wanted.has(key)) continue;
      await this.o.coordination.delete(key);
      known.delete(key);
      cleared += 1;
    }
    this.known = known;
    if (written + cleared > 0)
      this.o.logger.info({ written, cleared, marked: wanted.size }, 'peer outliers updated');
    return {
      marked: [...wanted.keys()].map((k) => {
        const p = parseOutlierKey(k)!;
        return `${p.hostname}/${p.gpuId}`;
      }),
      written,
      cleared,
    };
  }

  /** The cluster's marks in the store (after a restart or a change of leader). */
  private async readMarks(): Promise<Map<string, OutlierMark>> {
    const { kvs } = await this.o.coordination.range(`${clusterKey(this.o.clusterId)}/`);
    const out = new Map<string, OutlierMark>();
    for (const kv of kvs) {
      if (!parseOutlierKey(kv.key)) continue;
      const mark = parseOutlierMark(kv.value);
      if (mark) out.set(kv.key, mark);
    }
    return out;
  }
}

function markOf(row: OutlierRow, nowMs: number): OutlierMark {
  return {
    signal: row.signal,
    sinceMs: row.startMs,
    maxScore: row.maxScore,
    meanDeviation: row.meanDeviation,
    peers: row.peers,
    uuid: row.uuid,
    judgedAtMs: nowMs,
  };
}
