/**
 * Keeps the live hierarchy current from written batches: registers clusters, hosts and GPUs the
 * first time they are seen (hosts' last-seen refreshed every few seconds) and merges each GPU's
 * latest metric values. GPU records are updated with compare-and-swap on their mod revision, so
 * several collectors (or workers) never lose each other's values; a metric's latest value only moves
 * forward in time, so a redelivered batch changes nothing old. One txn updates up to
 * GPUS_PER_TXN records (one etcd revision, many events: see events/cursor.ts); a txn per GPU cost a
 * revision and a round trip per record (41k revisions for 350k rows).
 *
 * Samples of a MIG instance (dcgm-exporter's `GPU_I_ID` label) go to the instance's own record under
 * its GPU; the GPU record only notes that its GPU reported (last seen, newest sample time) and keeps
 * the values of its own series. Records fed by a scrape remember the target; a batch carrying a
 * scrape's presence marks the target's GPUs and instances that scrape did not expose as gone
 * (`goneSinceMs`, inactive at once), and a newer sample or scrape showing one clears the mark.
 */
import { sampleColumns } from '../domain/batch-codec.js';
import type { Batch, ClusterRecord, HostRecord, Sample, ScrapePresence, SeriesKey } from '../domain/types.js';
import type { Coordination, KeyValue } from '../ports/coordination.js';
import { evaluateHealth, XID_FIELD } from '../health/model.js';
import { clusterKey, gpuKey, gpusPrefix, hostKey, migKey, parseRecordKey } from './paths.js';
import { MIG_PROFILE_LABEL, migInstanceOf, type LiveGpuRecord, type MigRecord } from './records.js';

/** GPU records updated by one txn (etcd's --max-txn-ops defaults to 128; a record is about 1 KiB). */
export const GPUS_PER_TXN = 32;
/** Txns of one round in flight at once. */
const TXN_CONCURRENCY = 4;
/** Attempts of the compare-and-swap loop before giving up on one group of GPU updates. */
const MAX_CAS_ATTEMPTS = 20;
/** A host's last-seen time is rewritten at most this often by one writer. */
const HOST_REFRESH_MS = 10_000;

export interface HierarchyWriterOptions {
  coordination: Coordination;
  now?: () => number;
  /**
   * Least time from the start of one write round to the start of the next (ms, default 0: a round
   * starts as soon as the one before it ends). Samples arriving meanwhile wait and are merged, so a
   * GPU record is written at most once per interval however many batches touch it; each batch's
   * `apply` resolves (and the collector acks it) that much later.
   */
  minRoundIntervalMs?: number;
}

export class HierarchyWriter {
  private readonly coordination: Coordination;
  private readonly now: () => number;
  /** Cluster and host keys this writer wrote, with when: avoids a write per batch per host. */
  private readonly written = new Map<string, number>();
  /** Last record and mod revision this writer saw per GPU (or MIG instance) key: the CAS fast path. */
  private readonly gpuCache = new Map<string, { record: LiveGpuRecord; modRevision: number }>();
  /** Samples waiting for the next write round, by GPU or MIG instance. */
  private pending = new Map<string, PendingGroup>();
  /** Scrape presences waiting for the next write round (applied after its samples). */
  private pendingPresence: ScrapePresence[] = [];
  /** Hosts (cluster + NUL + host) each scrape target's samples were filed under, as this writer saw. */
  private readonly targetHosts = new Map<string, Set<string>>();
  /** The round being written, and the one that will start after it (shared by every caller meanwhile). */
  private inFlight: Promise<void> = Promise.resolve();
  private nextRound: Promise<void> | undefined;
  private readonly minRoundIntervalMs: number;
  /** When the last round started (performance.now()). */
  private lastRoundAt = -Infinity;

  constructor(options: HierarchyWriterOptions) {
    this.coordination = options.coordination;
    this.now = options.now ?? Date.now;
    this.minRoundIntervalMs = options.minRoundIntervalMs ?? 0;
    if (!Number.isFinite(this.minRoundIntervalMs) || this.minRoundIntervalMs < 0)
      throw new RangeError(
        `minRoundIntervalMs must be a finite number >= 0, got ${String(options.minRoundIntervalMs)}`,
      );
  }

  /** Create or refresh the cluster record (name and region come from configuration). */
  async registerCluster(record: Omit<ClusterRecord, 'lastSeenMs'>): Promise<void> {
    const full: ClusterRecord = { ...record, lastSeenMs: this.now() };
    await this.coordination.put(clusterKey(record.clusterId), JSON.stringify(full));
  }

  /**
   * Apply the samples of one durable batch to the hierarchy; resolves once they are written.
   * Idempotent. Batches applied while a write is in flight are coalesced into the next write, so
   * concurrent collector workers update each GPU record once per round instead of once per batch
   * (DCGM exports are metric-major: one batch touches hundreds of GPUs with one metric each).
   */
  apply(batch: Batch): Promise<void> {
    const target = scrapeTargetOf(batch);
    const columns = sampleColumns(batch);
    if (columns === undefined) {
      for (const s of batch.samples)
        this.addPoint({ series: s, timestampMs: s.timestampMs, value: s.value }, target);
    } else {
      const { series, seriesOf, times, values } = columns;
      for (let i = 0; i < times.length; i++)
        this.addPoint({ series: series[seriesOf[i]!]!, timestampMs: times[i]!, value: values[i]! }, target);
    }
    if (batch.presence) this.pendingPresence.push(batch.presence);
    this.nextRound ??= this.inFlight
      .then(
        () => this.untilRoundDue(),
        () => this.untilRoundDue(),
      )
      .then(() => this.runRound());
    return this.nextRound;
  }

  /** Resolves when `minRoundIntervalMs` has passed since the last round started. */
  private untilRoundDue(): Promise<void> {
    const wait = this.lastRoundAt + this.minRoundIntervalMs - performance.now();
    return wait > 0 ? new Promise((resolve) => setTimeout(resolve, wait)) : Promise.resolve();
  }

  private addPoint(point: Point, target: string | undefined): void {
    const s = point.series;
    // Group by a cheap key; the encoded record key is built once per GPU, not per sample.
    const gpu = `${s.clusterId}\u0000${s.hostname}\u0000${s.gpuId}`;
    this.addPending(gpu, point, target, undefined);
    // A MIG sample also tells the GPU record that its GPU reported (its values stay apart).
    const instance = migInstanceOf(s);
    if (instance !== undefined) this.addPending(`${gpu}\u0000${instance}`, point, target, instance);
  }

  private addPending(group: string, point: Point, target: string | undefined, instance?: string): void {
    let entry = this.pending.get(group);
    if (!entry) this.pending.set(group, (entry = { points: [], target, instance }));
    entry.points.push(point);
    if (target !== undefined) entry.target = target;
  }

  private runRound(): Promise<void> {
    this.lastRoundAt = performance.now();
    const groups = [...this.pending.values()];
    const presences = this.pendingPresence.sort((a, b) => a.scrapeMs - b.scrapeMs);
    this.pending = new Map();
    this.pendingPresence = [];
    this.nextRound = undefined;
    this.inFlight = this.writeGroups(groups).then(async () => {
      for (const presence of presences) await this.applyPresence(presence);
    });
    return this.inFlight;
  }

  private async writeGroups(groups: PendingGroup[]): Promise<void> {
    if (groups.length === 0) return;
    await this.registerHosts(groups.map((g) => g.points[0]!.series));
    const updates = groups.map(({ points, target, instance }): GpuUpdate => {
      const first = points[0]!.series;
      if (target !== undefined) this.noteTargetHost(target, first.clusterId, first.hostname);
      const key =
        instance === undefined
          ? gpuKey(first.clusterId, first.hostname, first.gpuId)
          : migKey(first.clusterId, first.hostname, first.gpuId, instance);
      return { key, points, target, instance };
    });
    const chunks: GpuUpdate[][] = [];
    for (let i = 0; i < updates.length; i += GPUS_PER_TXN) chunks.push(updates.slice(i, i + GPUS_PER_TXN));
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < chunks.length) await this.mergeGpus(chunks[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(TXN_CONCURRENCY, chunks.length) }, lane));
  }

  private async registerHosts(series: SeriesKey[]): Promise<void> {
    for (const sample of series) {
      const now = this.now();
      const cKey = clusterKey(sample.clusterId);
      if (!this.written.has(cKey)) {
        // A cluster seen in data but never configured still appears, with its id as name.
        const cluster: ClusterRecord = {
          clusterId: sample.clusterId,
          name: sample.clusterId,
          region: 'unknown',
          lastSeenMs: this.now(),
        };
        await this.coordination.txn(
          [{ key: cKey, target: 'createRevision', op: '=', value: 0 }],
          [{ type: 'put', key: cKey, value: JSON.stringify(cluster) }],
        );
        this.written.set(cKey, now);
      }
      const key = hostKey(sample.clusterId, sample.hostname);
      const lastWrite = this.written.get(key);
      if (lastWrite !== undefined && now - lastWrite < HOST_REFRESH_MS) continue;
      const host: HostRecord = { clusterId: sample.clusterId, hostname: sample.hostname, lastSeenMs: now };
      await this.coordination.put(key, JSON.stringify(host));
      this.written.set(key, now);
    }
  }

  /**
   * Merge a group of GPUs in one txn guarded on every record's mod revision. When another writer
   * changed any of them, the failure branch reads them all and the group is merged again.
   */
  private async mergeGpus(updates: GpuUpdate[]): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const now = this.now();
      const nexts = updates.map(({ key, points, target, instance }) =>
        instance === undefined
          ? mergePoints(this.gpuCache.get(key)?.record, points, now, target)
          : mergeMigPoints(
              this.gpuCache.get(key)?.record as MigRecord | undefined,
              instance,
              points,
              now,
              target,
            ),
      );
      const result = await this.coordination.txn(
        updates.map(({ key }) => ({
          key,
          target: 'modRevision' as const,
          op: '=' as const,
          value: this.gpuCache.get(key)?.modRevision ?? 0,
        })),
        updates.map(({ key }, i) => ({ type: 'put' as const, key, value: JSON.stringify(nexts[i]) })),
        updates.map(({ key }) => ({ type: 'get' as const, key })),
      );
      if (result.succeeded) {
        for (let i = 0; i < updates.length; i++)
          this.gpuCache.set(updates[i]!.key, { record: nexts[i]!, modRevision: result.revision });
        return;
      }
      updates.forEach(({ key }, i) => {
        const current = fromKv(result.gets[i]);
        if (current) this.gpuCache.set(key, current);
        else this.gpuCache.delete(key);
      });
    }
    throw new Error(
      `GPU records ${updates[0]!.key}.. kept changing under ${MAX_CAS_ATTEMPTS} update attempts`,
    );
  }

  private noteTargetHost(target: string, clusterId: string, hostname: string): void {
    let hosts = this.targetHosts.get(target);
    if (!hosts) this.targetHosts.set(target, (hosts = new Set()));
    hosts.add(`${clusterId}\u0000${hostname}`);
  }

  /**
   * Mark the GPUs and MIG instances of the presence's target that its scrape did not expose as gone,
   * and clear the mark of those it did. The records looked at are those under the hosts the target's
   * samples were filed under (as this writer saw them) and the hosts the scrape listed; each host is
   * one range read and its changes one CAS txn per GPUS_PER_TXN records, re-read on a conflict.
   */
  private async applyPresence(presence: ScrapePresence): Promise<void> {
    const present = new Set<string>();
    for (const g of presence.gpus) {
      this.noteTargetHost(presence.target, presence.clusterId, g.hostname);
      present.add(`${g.hostname}\u0000${g.gpuId}\u0000`);
      if (g.migInstance !== undefined) present.add(`${g.hostname}\u0000${g.gpuId}\u0000${g.migInstance}`);
    }
    const prefix = `${presence.clusterId}\u0000`;
    for (const host of this.targetHosts.get(presence.target) ?? []) {
      if (!host.startsWith(prefix)) continue;
      await this.applyPresenceToHost(presence, host.slice(prefix.length), present);
    }
  }

  private async applyPresenceToHost(
    presence: ScrapePresence,
    hostname: string,
    present: ReadonlySet<string>,
  ): Promise<void> {
    for (let attempt = 0; attempt < MAX_CAS_ATTEMPTS; attempt++) {
      const { kvs } = await this.coordination.range(gpusPrefix(presence.clusterId, hostname));
      const changes: { key: string; record: LiveGpuRecord; modRevision: number }[] = [];
      for (const kv of kvs) {
        const parsed = parseRecordKey(kv.key);
        if (parsed?.kind !== 'gpu' && parsed?.kind !== 'mig') continue;
        const record = parseRecord(kv.value);
        if (record?.target !== presence.target) continue;
        const id = `${parsed.hostname}\u0000${parsed.gpuId}\u0000${parsed.kind === 'mig' ? parsed.instance : ''}`;
        const next = presenceUpdate(record, present.has(id), presence.scrapeMs);
        if (next) changes.push({ key: kv.key, record: next, modRevision: kv.modRevision });
      }
      let conflict = false;
      for (let i = 0; i < changes.length && !conflict; i += GPUS_PER_TXN) {
        const chunk = changes.slice(i, i + GPUS_PER_TXN);
        const result = await this.coordination.txn(
          chunk.map((c) => ({
            key: c.key,
            target: 'modRevision' as const,
            op: '=' as const,
            value: c.modRevision,
          })),
          chunk.map((c) => ({ type: 'put' as const, key: c.key, value: JSON.stringify(c.record) })),
        );
        if (result.succeeded) {
          for (const c of chunk) this.gpuCache.set(c.key, { record: c.record, modRevision: result.revision });
        } else conflict = true;
      }
      if (!conflict) return;
    }
    throw new Error(
      `GPU records of host '${hostname}' kept changing under ${MAX_CAS_ATTEMPTS} presence update attempts`,
    );
  }
}

/**
 * One sample as the hierarchy keeps it until its round: its series (shared by every sample of the
 * series in a decoded batch), time and value; three fields instead of a Sample's thirteen.
 */
interface Point {
  readonly series: SeriesKey;
  readonly timestampMs: number;
  readonly value: number;
}

const pointOf = (s: Sample): Point => ({ series: s, timestampMs: s.timestampMs, value: s.value });

/** Samples of one pending GPU (or MIG instance) record, and the scrape target they came from. */
interface PendingGroup {
  points: Point[];
  target: string | undefined;
  instance: string | undefined;
}

/** The samples of one GPU (or MIG instance) record waiting to be merged into it. */
interface GpuUpdate {
  key: string;
  points: Point[];
  target: string | undefined;
  instance: string | undefined;
}

/** The scrape target a batch came from (its source is the target URL), or undefined. */
function scrapeTargetOf(batch: Batch): string | undefined {
  if (batch.presence) return batch.presence.target;
  return /^https?:\/\//i.test(batch.source) ? batch.source : undefined;
}

function parseRecord(value: string): LiveGpuRecord | undefined {
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'object' && parsed !== null ? (parsed as LiveGpuRecord) : undefined;
  } catch {
    return undefined;
  }
}

function fromKv(kv: KeyValue | undefined): { record: LiveGpuRecord; modRevision: number } | undefined {
  return kv ? { record: JSON.parse(kv.value) as LiveGpuRecord, modRevision: kv.modRevision } : undefined;
}

/**
 * The record after a presence of its target, or undefined when unchanged. Exposed by the scrape: a
 * gone mark older than the scrape is cleared. Not exposed: it is marked gone unless it already is or
 * holds a sample at least as new as the scrape (a presence that arrived late).
 */
export function presenceUpdate<R extends LiveGpuRecord>(
  record: R,
  exposed: boolean,
  scrapeMs: number,
): R | undefined {
  if (exposed) {
    if (record.goneSinceMs === undefined || scrapeMs < record.goneSinceMs) return undefined;
    const next = { ...record };
    delete next.goneSinceMs;
    return withHealth(next);
  }
  if (record.goneSinceMs !== undefined || record.lastSampleMs >= scrapeMs) return undefined;
  return withHealth({ ...record, goneSinceMs: scrapeMs });
}

/** A GPU record (not a MIG instance) with its health evaluated again; a MIG record as it is. */
function withHealth<R extends LiveGpuRecord>(record: R, xids?: { code: number; atMs: number }[]): R {
  if ('instance' in record) return record;
  const health = evaluateHealth({
    metrics: record.metrics,
    modelName: record.modelName,
    lastSampleMs: record.lastSampleMs,
    ...(record.goneSinceMs === undefined ? {} : { goneSinceMs: record.goneSinceMs }),
    ...(record.health === undefined ? {} : { previous: record.health }),
    ...(xids === undefined ? {} : { xids }),
  });
  const before = record.health;
  const codes = (h: { reasons: { code: string }[] }): string => h.reasons.map((r) => r.code).join(',');
  health.changed = before
    ? before.state !== health.state || codes(before) !== codes(health)
    : health.state !== 'ok';
  return { ...record, health };
}

/**
 * Merge samples into a GPU or instance record. `own` says which samples' values belong to it; the
 * others only count as the GPU having reported. A gone mark stays unless a sample is newer than it.
 */
function merge(
  previous: LiveGpuRecord | undefined,
  points: readonly Point[],
  nowMs: number,
  target: string | undefined,
  own: (p: Point) => boolean,
): LiveGpuRecord {
  const first = points[0]!.series;
  const metrics = { ...(previous?.metrics ?? {}) };
  let lastSampleMs = previous?.lastSampleMs ?? 0;
  let newest = 0;
  for (const p of points) {
    if (own(p)) {
      const old = metrics[p.series.metric];
      if (!old || p.timestampMs >= old.timestampMs)
        metrics[p.series.metric] = { value: p.value, timestampMs: p.timestampMs };
    }
    if (p.timestampMs > lastSampleMs) lastSampleMs = p.timestampMs;
    if (p.timestampMs > newest) newest = p.timestampMs;
  }
  const record: LiveGpuRecord = {
    clusterId: first.clusterId,
    hostname: first.hostname,
    gpuId: first.gpuId,
    uuid: first.uuid,
    device: first.device,
    modelName: first.modelName,
    metrics,
    lastSampleMs,
    lastSeenMs: nowMs,
  };
  const recordTarget = target ?? previous?.target;
  if (recordTarget !== undefined) record.target = recordTarget;
  if (previous?.goneSinceMs !== undefined && newest <= previous.goneSinceMs)
    record.goneSinceMs = previous.goneSinceMs;
  if (previous?.health !== undefined) record.health = previous.health;
  return record;
}

/**
 * Merge samples of one GPU into its record: each metric keeps its newest value. Samples of its MIG
 * instances (`GPU_I_ID`) only move its last-seen and newest sample times: their values are the
 * instances' own. `target` is the scrape target they came from, if any.
 */
export function mergeSamples(
  previous: LiveGpuRecord | undefined,
  samples: readonly Sample[],
  nowMs: number,
  target?: string,
): LiveGpuRecord {
  return mergePoints(previous, samples.map(pointOf), nowMs, target);
}

/** {@link mergeSamples} of points. */
function mergePoints(
  previous: LiveGpuRecord | undefined,
  points: readonly Point[],
  nowMs: number,
  target: string | undefined,
): LiveGpuRecord {
  const own = (p: Point): boolean => migInstanceOf(p.series) === undefined;
  // Every non-zero XID of the round counts (one round may hold several scrapes of the GPU).
  const xids = points
    .filter((p) => p.series.metric === XID_FIELD && p.value !== 0 && Number.isFinite(p.value) && own(p))
    .map((p) => ({ code: p.value, atMs: p.timestampMs }));
  return withHealth(merge(previous, points, nowMs, target, own), xids);
}

/** Merge the points of one MIG instance into its record (every point given is the instance's). */
function mergeMigPoints(
  previous: MigRecord | undefined,
  instance: string,
  points: readonly Point[],
  nowMs: number,
  target: string | undefined,
): MigRecord {
  let profile = previous?.profile ?? '';
  for (const p of points) profile = p.series.labels[MIG_PROFILE_LABEL] || profile;
  return { ...merge(previous, points, nowMs, target, () => true), instance, profile };
}
