/**
 * Read side of the live hierarchy (Cluster -> Host -> GPU -> MIG instance) kept in the coordination
 * store by the collector. Each call does one prefix range read and groups the records it returns;
 * activity is derived from `lastSeenMs` against an injected clock, so a host or GPU that stops
 * reporting shows as inactive within `staleAfterMs`, and at once when its scrape target's newest
 * complete scrape left it out (`goneSinceMs`); a host whose every GPU is gone is inactive too.
 * MIG instances are listed under their GPU only (never counted as GPUs). Records that do not parse
 * are skipped, never fatal.
 * Parsed records are kept by key and mod revision, so a record is parsed once per change rather
 * than once per request (a cluster view of 1,000 GPUs parsed 1,000 JSON values per call). Records
 * returned are shared between calls: callers must not mutate them.
 */
import type { Coordination, KeyValue } from '../ports/coordination.js';
import type { ClusterRecord, HostRecord } from '../domain/types.js';
import { evaluateHealth, withStaleness } from '../health/model.js';
import { parseOutlierMark, withOutlier, type OutlierMark } from '../health/outlier-mark.js';
import { parseStoredHealth } from '../health/parse.js';
import type { GpuHealth } from '../health/types.js';
import { CLUSTERS_PREFIX, clusterKey, hostKey, parseOutlierKey, parseRecordKey } from './paths.js';
import type { LiveGpuRecord, MigRecord, PresenceFields } from './records.js';

/** Host and GPU counts of one cluster; "active" means seen within `staleAfterMs`. */
export interface ClusterTotals {
  total_hosts: number;
  total_gpus: number;
  active_hosts: number;
  active_gpus: number;
}

/** A cluster record with its totals. */
export interface ClusterSummary extends ClusterRecord {
  totals: ClusterTotals;
}

/** A host record with its activity and GPU counts. */
export interface HostSummary extends HostRecord {
  active: boolean;
  gpuCount: number;
  activeGpuCount: number;
}

/** A MIG instance record with its activity. */
export interface MigStatus extends MigRecord {
  active: boolean;
}

/** A GPU record with its activity, its health and its MIG instances (ordered by instance id). */
export interface GpuStatus extends LiveGpuRecord {
  active: boolean;
  migInstances: MigStatus[];
  /**
   * Health at read time: the record's stored health (or, for a record written before health
   * existed, one evaluated from its latest values) plus STALE when its newest sample is more than
   * `staleAfterMs` older than the reader's clock, plus PEER_OUTLIER while the outlier watch marks it.
   */
  gpuHealth: GpuHealth;
  /** The outlier watch's mark, while the GPU departs from its siblings. */
  outlier?: OutlierMark;
}

/** Called for a hierarchy key whose value is not a valid record (it is then skipped). */
export type InvalidRecordHandler = (key: string, reason: string) => void;

/** A hierarchy record as parsed from its key and value. */
type ParsedRecord =
  | { kind: 'cluster'; record: ClusterRecord }
  | { kind: 'host'; record: HostRecord }
  | { kind: 'gpu'; record: LiveGpuRecord }
  | { kind: 'mig'; record: MigRecord }
  | { kind: 'outlier'; clusterId: string; hostname: string; gpuId: string; mark: OutlierMark };

/** A parse result kept for a key, valid while the key's mod revision is unchanged. */
interface CachedRecord {
  modRevision: number;
  record: ParsedRecord | undefined;
}

/** Records of one range read, grouped by cluster and host. */
interface ClusterGroup {
  clusterId: string;
  record?: ClusterRecord;
  hosts: Map<string, HostGroup>;
}
interface HostGroup {
  hostname: string;
  record?: HostRecord;
  gpus: LiveGpuRecord[];
  /** MIG instance records by GPU index. */
  mig: Map<string, MigRecord[]>;
  /** Outlier marks by GPU index. */
  outliers?: Map<string, OutlierMark>;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isString = (v: unknown): v is string => typeof v === 'string';

// One collator for every comparison: `localeCompare` with options builds a new one per call, which
// made sorting a cluster's GPUs the larger part of a cluster read.
const numericCollator = new Intl.Collator('en', { numeric: true });

/** Natural order: "hgpu-2" before "hgpu-10", "2" before "10"; ties broken by code units. */
export const naturalCompare = (a: string, b: string): number =>
  numericCollator.compare(a, b) || (a < b ? -1 : a > b ? 1 : 0);

/** Reads cluster, host and GPU records from a {@link Coordination} store. */
export class HierarchyReader {
  /**
   * @param coordination store the collector writes the hierarchy to
   * @param staleAfterMs a host or GPU is active while `now() - lastSeenMs <= staleAfterMs`
   * @param now clock in ms since the epoch (injectable for tests)
   * @param onInvalidRecord told about records that fail to parse (they are skipped)
   */
  constructor(
    private readonly coordination: Coordination,
    private readonly staleAfterMs: number,
    private readonly now: () => number = Date.now,
    private readonly onInvalidRecord?: InvalidRecordHandler,
  ) {}

  /** Parsed records by key, with the mod revision they were parsed at (undefined: invalid value). */
  private parsed = new Map<string, CachedRecord>();

  /** Every cluster with its totals, ordered by cluster id. */
  async listClusters(): Promise<ClusterSummary[]> {
    const groups = await this.read(CLUSTERS_PREFIX);
    const now = this.now();
    return [...groups.values()]
      .sort((a, b) => naturalCompare(a.clusterId, b.clusterId))
      .map((g) => this.summarizeCluster(g, now));
  }

  /** One cluster with its totals, or undefined when it has no records. */
  async getCluster(clusterId: string): Promise<ClusterSummary | undefined> {
    const group = (await this.read(clusterKey(clusterId))).get(clusterId);
    return group && this.summarizeCluster(group, this.now());
  }

  /** Hosts of a cluster ordered by hostname, or undefined when the cluster is unknown. */
  async listHosts(clusterId: string): Promise<HostSummary[] | undefined> {
    const group = (await this.read(clusterKey(clusterId))).get(clusterId);
    if (!group) return undefined;
    const now = this.now();
    return [...group.hosts.values()]
      .sort((a, b) => naturalCompare(a.hostname, b.hostname))
      .map((h) => this.summarizeHost(clusterId, h, now));
  }

  /** One host, or undefined when the cluster or host is unknown. */
  async getHost(clusterId: string, hostname: string): Promise<HostSummary | undefined> {
    const host = await this.readHost(clusterId, hostname);
    return host && this.summarizeHost(clusterId, host, this.now());
  }

  /** GPUs of a host ordered by index, or undefined when the cluster or host is unknown. */
  async listGpus(clusterId: string, hostname: string): Promise<GpuStatus[] | undefined> {
    const host = await this.readHost(clusterId, hostname);
    if (!host) return undefined;
    const now = this.now();
    return host.gpus.map((g) => this.gpuStatus(g, host, now));
  }

  /**
   * One GPU of a host, by its index within the host (`"0"`) or its UUID (case-insensitive);
   * undefined when the cluster, host or GPU is unknown.
   */
  async getGpu(clusterId: string, hostname: string, gpuIdOrUuid: string): Promise<GpuStatus | undefined> {
    const host = await this.readHost(clusterId, hostname);
    if (!host) return undefined;
    const wanted = gpuIdOrUuid.toLowerCase();
    const gpu =
      host.gpus.find((g) => g.gpuId === gpuIdOrUuid) ??
      host.gpus.find((g) => g.uuid.toLowerCase() === wanted);
    return gpu && this.gpuStatus(gpu, host, this.now());
  }

  /**
   * One MIG instance of a GPU (named by index within the host or UUID), by its instance id;
   * undefined when the host, GPU or instance is unknown.
   */
  async getMigInstance(
    clusterId: string,
    hostname: string,
    gpuIdOrUuid: string,
    instance: string,
  ): Promise<MigStatus | undefined> {
    return (await this.getGpu(clusterId, hostname, gpuIdOrUuid))?.migInstances.find(
      (m) => m.instance === instance,
    );
  }

  /** The GPU with this UUID (case-insensitive) in any cluster, or undefined. */
  async findGpuByUuid(uuid: string): Promise<GpuStatus | undefined> {
    const wanted = uuid.toLowerCase();
    return (await this.listAllGpus()).find((g) => g.uuid.toLowerCase() === wanted);
  }

  /** Every GPU of every cluster, ordered by cluster, host and index. */
  async listAllGpus(): Promise<GpuStatus[]> {
    const groups = await this.read(CLUSTERS_PREFIX);
    const now = this.now();
    const out: GpuStatus[] = [];
    for (const cluster of [...groups.values()].sort((a, b) => naturalCompare(a.clusterId, b.clusterId))) {
      for (const host of [...cluster.hosts.values()].sort((a, b) => naturalCompare(a.hostname, b.hostname))) {
        for (const gpu of host.gpus) out.push(this.gpuStatus(gpu, host, now));
      }
    }
    return out;
  }

  private isActive(lastSeenMs: number, now: number): boolean {
    return now - lastSeenMs <= this.staleAfterMs;
  }

  /** Seen within `staleAfterMs` and not left out by its scrape target's newest scrape. */
  private recordActive(record: PresenceFields & { lastSeenMs: number }, now: number): boolean {
    return record.goneSinceMs === undefined && this.isActive(record.lastSeenMs, now);
  }

  private gpuStatus(gpu: LiveGpuRecord, host: HostGroup, now: number): GpuStatus {
    const migInstances = (host.mig.get(gpu.gpuId) ?? []).map((m) => ({
      ...m,
      active: this.recordActive(m, now),
    }));
    const stored =
      gpu.health ??
      evaluateHealth({
        metrics: gpu.metrics,
        modelName: gpu.modelName,
        lastSampleMs: gpu.lastSampleMs,
        ...(gpu.goneSinceMs === undefined ? {} : { goneSinceMs: gpu.goneSinceMs }),
      });
    const outlier = host.outliers?.get(gpu.gpuId);
    const gpuHealth = withOutlier(withStaleness(stored, gpu.lastSampleMs, now, this.staleAfterMs), outlier);
    return {
      ...gpu,
      active: this.recordActive(gpu, now),
      migInstances,
      gpuHealth,
      ...(outlier ? { outlier } : {}),
    };
  }

  private summarizeHost(clusterId: string, host: HostGroup, now: number): HostSummary {
    // A host with GPU records but no host record of its own is still shown, seen when its GPUs were.
    const record: HostRecord = host.record ?? {
      clusterId,
      hostname: host.hostname,
      lastSeenMs: Math.max(0, ...host.gpus.map((g) => g.lastSeenMs)),
    };
    // A host whose every GPU its scrape target left out is gone with them.
    const allGone = host.gpus.length > 0 && host.gpus.every((g) => g.goneSinceMs !== undefined);
    return {
      ...record,
      active: !allGone && this.isActive(record.lastSeenMs, now),
      gpuCount: host.gpus.length,
      activeGpuCount: host.gpus.filter((g) => this.recordActive(g, now)).length,
    };
  }

  private summarizeCluster(group: ClusterGroup, now: number): ClusterSummary {
    const hosts = [...group.hosts.values()].map((h) => this.summarizeHost(group.clusterId, h, now));
    const record: ClusterRecord = group.record ?? {
      clusterId: group.clusterId,
      name: group.clusterId,
      region: '',
      lastSeenMs: Math.max(0, ...hosts.map((h) => h.lastSeenMs)),
    };
    return {
      ...record,
      totals: {
        total_hosts: hosts.length,
        total_gpus: hosts.reduce((n, h) => n + h.gpuCount, 0),
        active_hosts: hosts.filter((h) => h.active).length,
        active_gpus: hosts.reduce((n, h) => n + h.activeGpuCount, 0),
      },
    };
  }

  /** Range the host's prefix once and return its group (undefined when it has no records). */
  private async readHost(clusterId: string, hostname: string): Promise<HostGroup | undefined> {
    return (await this.read(hostKey(clusterId, hostname))).get(clusterId)?.hosts.get(hostname);
  }

  /**
   * One range read over `prefix`, grouped by cluster and host. Keys that share the prefix but
   * belong to another cluster or host (`/c/a` is a prefix of `/c/ab`) are grouped under their own
   * ids, so callers pick the one they asked for.
   */
  private async read(prefix: string): Promise<Map<string, ClusterGroup>> {
    const { kvs } = await this.coordination.range(prefix);
    // A read of the whole hierarchy sees every live key: drop what was deleted since.
    const parsedNow = prefix === CLUSTERS_PREFIX ? new Map<string, CachedRecord>() : this.parsed;
    const clusters = new Map<string, ClusterGroup>();
    const clusterOf = (clusterId: string): ClusterGroup => {
      let group = clusters.get(clusterId);
      if (!group) clusters.set(clusterId, (group = { clusterId, hosts: new Map() }));
      return group;
    };
    const hostOf = (clusterId: string, hostname: string): HostGroup => {
      const hosts = clusterOf(clusterId).hosts;
      let host = hosts.get(hostname);
      if (!host) hosts.set(hostname, (host = { hostname, gpus: [], mig: new Map() }));
      return host;
    };

    const marks: Extract<ParsedRecord, { kind: 'outlier' }>[] = [];
    for (const kv of kvs) {
      let cached = this.parsed.get(kv.key);
      if (cached?.modRevision !== kv.modRevision) {
        cached = { modRevision: kv.modRevision, record: this.parseRecord(kv) };
      }
      parsedNow.set(kv.key, cached);
      const parsed = cached.record;
      if (!parsed) continue;
      if (parsed.kind === 'cluster') clusterOf(parsed.record.clusterId).record = parsed.record;
      else if (parsed.kind === 'host')
        hostOf(parsed.record.clusterId, parsed.record.hostname).record = parsed.record;
      else if (parsed.kind === 'gpu')
        hostOf(parsed.record.clusterId, parsed.record.hostname).gpus.push(parsed.record);
      else if (parsed.kind === 'outlier') marks.push(parsed);
      else {
        const { mig } = hostOf(parsed.record.clusterId, parsed.record.hostname);
        let list = mig.get(parsed.record.gpuId);
        if (!list) mig.set(parsed.record.gpuId, (list = []));
        list.push(parsed.record);
      }
    }
    this.parsed = parsedNow;
    // A mark belongs to a GPU record: one left behind by a deleted GPU creates no host.
    for (const m of marks) {
      const host = clusters.get(m.clusterId)?.hosts.get(m.hostname);
      if (host) (host.outliers ??= new Map()).set(m.gpuId, m.mark);
    }
    for (const cluster of clusters.values()) {
      for (const host of cluster.hosts.values()) {
        host.gpus.sort((a, b) => naturalCompare(a.gpuId, b.gpuId));
        for (const list of host.mig.values()) list.sort((a, b) => naturalCompare(a.instance, b.instance));
      }
    }
    return clusters;
  }

  /** The record a key-value holds, or undefined (reported) when it is not one. */
  private parseRecord(kv: KeyValue): ParsedRecord | undefined {
    const outlier = parseOutlierKey(kv.key);
    if (outlier) {
      const mark = parseOutlierMark(kv.value);
      if (mark) return { kind: 'outlier', ...outlier, mark };
      this.onInvalidRecord?.(kv.key, 'not an outlier mark');
      return undefined;
    }
    const parsed = parseRecordKey(kv.key);
    if (!parsed) return undefined;
    const value = this.parseValue(kv);
    if (value === undefined) return undefined;
    if (parsed.kind === 'cluster') {
      const record = toClusterRecord(value, parsed.clusterId);
      if (record) return { kind: 'cluster', record };
      this.onInvalidRecord?.(kv.key, 'not a cluster record');
    } else if (parsed.kind === 'host') {
      const record = toHostRecord(value, parsed.clusterId, parsed.hostname);
      if (record) return { kind: 'host', record };
      this.onInvalidRecord?.(kv.key, 'not a host record');
    } else if (parsed.kind === 'gpu') {
      const record = toGpuRecord(value, parsed.clusterId, parsed.hostname, parsed.gpuId);
      if (record) return { kind: 'gpu', record };
      this.onInvalidRecord?.(kv.key, 'not a GPU record');
    } else {
      const gpu = toGpuRecord(value, parsed.clusterId, parsed.hostname, parsed.gpuId);
      if (gpu) {
        const profile = isString(value.profile) ? value.profile : '';
        return { kind: 'mig', record: { ...gpu, instance: parsed.instance, profile } };
      }
      this.onInvalidRecord?.(kv.key, 'not a MIG instance record');
    }
    return undefined;
  }

  private parseValue(kv: KeyValue): Record<string, unknown> | undefined {
    try {
      const value: unknown = JSON.parse(kv.value);
      if (isObject(value)) return value;
      this.onInvalidRecord?.(kv.key, 'value is not a JSON object');
    } catch {
      this.onInvalidRecord?.(kv.key, 'value is not JSON');
    }
    return undefined;
  }
}

// The key is the truth for identity fields; the value supplies the rest.

function toClusterRecord(v: Record<string, unknown>, clusterId: string): ClusterRecord | undefined {
  if (!isFiniteNumber(v.lastSeenMs)) return undefined;
  return {
    clusterId,
    name: isString(v.name) && v.name !== '' ? v.name : clusterId,
    region: isString(v.region) ? v.region : '',
    lastSeenMs: v.lastSeenMs,
  };
}

function toHostRecord(
  v: Record<string, unknown>,
  clusterId: string,
  hostname: string,
): HostRecord | undefined {
  if (!isFiniteNumber(v.lastSeenMs)) return undefined;
  return { clusterId, hostname, lastSeenMs: v.lastSeenMs };
}

function toGpuRecord(
  v: Record<string, unknown>,
  clusterId: string,
  hostname: string,
  gpuId: string,
): LiveGpuRecord | undefined {
  if (!isString(v.uuid) || !isFiniteNumber(v.lastSeenMs)) return undefined;
  const metrics: LiveGpuRecord['metrics'] = {};
  if (isObject(v.metrics)) {
    for (const [field, latest] of Object.entries(v.metrics)) {
      if (isObject(latest) && isFiniteNumber(latest.value) && isFiniteNumber(latest.timestampMs)) {
        metrics[field] = { value: latest.value, timestampMs: latest.timestampMs };
      }
    }
  }
  const record: LiveGpuRecord = {
    clusterId,
    hostname,
    gpuId,
    uuid: v.uuid,
    device: isString(v.device) ? v.device : '',
    modelName: isString(v.modelName) ? v.modelName : '',
    metrics,
    lastSampleMs: isFiniteNumber(v.lastSampleMs) ? v.lastSampleMs : 0,
    lastSeenMs: v.lastSeenMs,
  };
  if (isString(v.target)) record.target = v.target;
  if (isFiniteNumber(v.goneSinceMs)) record.goneSinceMs = v.goneSinceMs;
  const health = parseStoredHealth(v.health);
  if (health) record.health = health;
  return record;
}
