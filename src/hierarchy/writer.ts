/**
 * Keeps the live hierarchy current from written batches: registers clusters, hosts and GPUs the
 * first time they are seen (hosts' last-seen refreshed every few seconds) and merges each GPU's
 * latest metric values. GPU records are updated with compare-and-swap on their mod revision, so
 * several collectors (or workers) never lose each other's values; a metric's latest value only moves
 * forward in time, so a redelivered batch changes nothing old. One txn updates up to
 * GPUS_PER_TXN records (one etcd revision, many events: see events/cursor.ts); a txn per GPU cost a
 * revision and a round trip per record (41k revisions for 350k rows).
 */
import type { Batch, ClusterRecord, GpuRecord, HostRecord, Sample } from '../domain/types.js';
import type { Coordination, KeyValue } from '../ports/coordination.js';
import { clusterKey, gpuKey, hostKey } from './paths.js';

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
}

export class HierarchyWriter {
  private readonly coordination: Coordination;
  private readonly now: () => number;
  /** Cluster and host keys this writer wrote, with when: avoids a write per batch per host. */
  private readonly written = new Map<string, number>();
  /** Last record and mod revision this writer saw per GPU key: the CAS fast path. */
  private readonly gpuCache = new Map<string, { record: GpuRecord; modRevision: number }>();
  /** Samples waiting for the next write round, by GPU. */
  private pending = new Map<string, Sample[]>();
  /** The round being written, and the one that will start after it (shared by every caller meanwhile). */
  private inFlight: Promise<void> = Promise.resolve();
  private nextRound: Promise<void> | undefined;

  constructor(options: HierarchyWriterOptions) {
    this.coordination = options.coordination;
    this.now = options.now ?? Date.now;
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
    for (const sample of batch.samples) {
      // Group by a cheap key; the encoded record key is built once per GPU, not per sample.
      const group = `${sample.clusterId}\u0000${sample.hostname}\u0000${sample.gpuId}`;
      let list = this.pending.get(group);
      if (!list) this.pending.set(group, (list = []));
      list.push(sample);
    }
    this.nextRound ??= this.inFlight.then(
      () => this.runRound(),
      () => this.runRound(),
    );
    return this.nextRound;
  }

  private runRound(): Promise<void> {
    const groups = [...this.pending.values()];
    this.pending = new Map();
    this.nextRound = undefined;
    this.inFlight = this.writeGroups(groups);
    return this.inFlight;
  }

  private async writeGroups(groups: Sample[][]): Promise<void> {
    if (groups.length === 0) return;
    await this.registerHosts(groups.map((samples) => samples[0]!));
    const updates = groups.map((samples) => {
      const first = samples[0]!;
      return { key: gpuKey(first.clusterId, first.hostname, first.gpuId), samples };
    });
    const chunks: GpuUpdate[][] = [];
    for (let i = 0; i < updates.length; i += GPUS_PER_TXN) chunks.push(updates.slice(i, i + GPUS_PER_TXN));
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < chunks.length) await this.mergeGpus(chunks[next++]!);
    };
    await Promise.all(Array.from({ length: Math.min(TXN_CONCURRENCY, chunks.length) }, lane));
  }

  private async registerHosts(samples: Sample[]): Promise<void> {
    for (const sample of samples) {
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
      const nexts = updates.map(({ key, samples }) =>
        mergeSamples(this.gpuCache.get(key)?.record, samples, now),
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
}

/** The samples of one GPU record waiting to be merged into it. */
interface GpuUpdate {
  key: string;
  samples: Sample[];
}

function fromKv(kv: KeyValue | undefined): { record: GpuRecord; modRevision: number } | undefined {
  return kv ? { record: JSON.parse(kv.value) as GpuRecord, modRevision: kv.modRevision } : undefined;
}

/** Merge samples of one GPU into its record: each metric keeps its newest value. */
export function mergeSamples(previous: GpuRecord | undefined, samples: Sample[], nowMs: number): GpuRecord {
  const first = samples[0]!;
  const metrics = { ...(previous?.metrics ?? {}) };
  let lastSampleMs = previous?.lastSampleMs ?? 0;
  for (const s of samples) {
    const old = metrics[s.metric];
    if (!old || s.timestampMs >= old.timestampMs)
      metrics[s.metric] = { value: s.value, timestampMs: s.timestampMs };
    if (s.timestampMs > lastSampleMs) lastSampleMs = s.timestampMs;
  }
  return {
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
}
