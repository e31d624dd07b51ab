// The live fleet state: every GPU's latest values, fed by /ws events (snapshot, then updates).
// Changes are batched per animation frame: listeners of a GPU key run at most once a frame, so a
// burst of events re-renders only the tiles that changed, once.
import type { Alert, Health } from './api';
import { fieldOf } from './metrics';

/** A MIG instance's live state. */
export interface MigState {
  active: boolean;
  values: Record<string, number>;
}

/** A GPU's live state. */
export interface GpuState {
  key: string;
  clusterId: string;
  hostId: string;
  index: string;
  uuid: string;
  model: string;
  /** False once the GPU is marked gone (its target no longer exposes it). */
  active: boolean;
  /** Newest sample time, ms. */
  sampleTime: number;
  /** When the collector last wrote the record, ms (0 when unknown). */
  observedAt: number;
  /** Latest value per DCGM field. */
  values: Record<string, number>;
  /** Sample time (ms) of each latest value. */
  times: Record<string, number>;
  mig: Map<string, MigState>;
  /** Health the collector stored with the record (STALE is judged by the reader, not stored). */
  health?: Health;
}

/** A /ws event (docs/ws-protocol.md). */
export interface StreamEvent {
  eventType: string;
  cursor?: string;
  timestamp?: string;
  observedAt?: string | null;
  clusterId: string;
  hostId?: string;
  gpuId?: string;
  gpuIndex?: string;
  deviceName?: string;
  active?: boolean;
  migInstance?: string;
  data?: Record<string, number>;
  dataTimestamps?: Record<string, string>;
  health?: Health;
}

/** Key of a GPU: cluster, host and index. */
export function gpuKey(clusterId: string, hostId: string, index: string): string {
  return `${clusterId}\n${hostId}\n${index}`;
}

type Listener = () => void;

/** Most GPUs whose listeners run in one frame (see {@link FleetStore.flush}). */
const GPUS_PER_FRAME = 250;

/** Live fleet state with per-GPU and structural listeners, notified once per animation frame. */
export class FleetStore {
  readonly gpus = new Map<string, GpuState>();
  /** Hosts seen in events: cluster -> host -> last seen (ms). */
  readonly hosts = new Map<string, Map<string, number>>();
  private readonly keyListeners = new Map<string, Set<Listener>>();
  private readonly anyListeners = new Set<Listener>();
  private readonly structureListeners = new Set<Listener>();
  private dirty = new Set<string>();
  private structureChanged = false;
  private scheduled = false;
  /** Events applied since the page loaded (shown in the footer, used by tests). */
  applied = 0;
  /** Bumped when a GPU's stored health changed (the health view reloads on it). */
  healthVersion = 0;

  /** Run `fn` (once per frame at most) when the GPU `key` changes. Returns an unsubscribe function. */
  onGpu(key: string, fn: Listener): () => void {
    let set = this.keyListeners.get(key);
    if (!set) this.keyListeners.set(key, (set = new Set()));
    set.add(fn);
    return () => {
      set.delete(fn);
      if (set.size === 0) this.keyListeners.delete(key);
    };
  }

  /** Run `fn` once per frame in which anything changed. */
  onAny(fn: Listener): () => void {
    this.anyListeners.add(fn);
    return () => this.anyListeners.delete(fn);
  }

  /** Run `fn` when GPUs or hosts are added or removed. */
  onStructure(fn: Listener): () => void {
    this.structureListeners.add(fn);
    return () => this.structureListeners.delete(fn);
  }

  /** Forget everything (a `resync`: snapshots follow). */
  reset(): void {
    for (const key of this.gpus.keys()) this.dirty.add(key);
    this.gpus.clear();
    this.hosts.clear();
    this.structureChanged = true;
    this.schedule();
  }

  /** GPUs of one host, by index. */
  gpusOf(clusterId: string, hostId: string): GpuState[] {
    const out: GpuState[] = [];
    for (const gpu of this.gpus.values())
      if (gpu.clusterId === clusterId && gpu.hostId === hostId) out.push(gpu);
    return out.sort((a, b) => Number(a.index) - Number(b.index) || a.index.localeCompare(b.index));
  }

  /** Seed or refresh one GPU from REST (host page). */
  put(gpu: GpuState): void {
    const known = this.gpus.get(gpu.key);
    if (known && known.sampleTime > gpu.sampleTime) return;
    if (!known) this.structureChanged = true;
    this.gpus.set(gpu.key, gpu);
    this.touch(gpu.key);
  }

  /** Apply one /ws event. */
  apply(e: StreamEvent): void {
    this.applied++;
    const hostId = e.hostId;
    switch (e.eventType) {
      case 'GPU_UPDATE':
      case 'GPU_HEALTH': // a write that changed the GPU's health; it carries the metrics too
      case 'SNAPSHOT':
      case 'GPU_INACTIVE':
        return this.applyGpu(e);
      case 'GPU_OUTLIER':
        // A peer-outlier mark set or cleared: a health reason the health view shows.
        this.healthVersion++;
        this.schedule();
        return;
      case 'GPU_REMOVED':
        if (hostId && e.gpuIndex !== undefined) this.remove(gpuKey(e.clusterId, hostId, e.gpuIndex));
        return;
      case 'MIG_UPDATE':
      case 'MIG_INACTIVE':
      case 'MIG_REMOVED':
        return this.applyMig(e);
      case 'HOST_UPDATE':
        if (hostId) this.seeHost(e.clusterId, hostId, e.timestamp);
        return;
      case 'HOST_REMOVED':
        if (!hostId) return;
        this.hosts.get(e.clusterId)?.delete(hostId);
        for (const gpu of this.gpusOf(e.clusterId, hostId)) this.remove(gpu.key);
        this.structureChanged = true;
        this.schedule();
        return;
      case 'CLUSTER_REMOVED':
        this.hosts.delete(e.clusterId);
        for (const gpu of [...this.gpus.values()]) if (gpu.clusterId === e.clusterId) this.remove(gpu.key);
        return;
      default:
        return;
    }
  }

  private seeHost(clusterId: string, hostId: string, time?: string | null): void {
    let hosts = this.hosts.get(clusterId);
    if (!hosts) this.hosts.set(clusterId, (hosts = new Map()));
    if (!hosts.has(hostId)) this.structureChanged = true;
    hosts.set(hostId, time ? Date.parse(time) : Date.now());
    this.schedule();
  }

  private applyGpu(e: StreamEvent): void {
    if (!e.hostId || e.gpuIndex === undefined) return;
    const key = gpuKey(e.clusterId, e.hostId, e.gpuIndex);
    let gpu = this.gpus.get(key);
    if (!gpu) {
      gpu = {
        key,
        clusterId: e.clusterId,
        hostId: e.hostId,
        index: e.gpuIndex,
        uuid: e.gpuId ?? '',
        model: e.deviceName ?? '',
        active: true,
        sampleTime: 0,
        observedAt: 0,
        values: {},
        times: {},
        mig: new Map(),
      };
      this.gpus.set(key, gpu);
      this.structureChanged = true;
      if (!this.hosts.get(e.clusterId)?.has(e.hostId)) this.seeHost(e.clusterId, e.hostId, e.observedAt);
    }
    if (e.eventType === 'GPU_INACTIVE') gpu.active = false;
    else gpu.active = e.active ?? true;
    if (e.data) {
      const values: Record<string, number> = {};
      const times: Record<string, number> = {};
      for (const [name, value] of Object.entries(e.data)) {
        const field = fieldOf(name);
        values[field] = value;
        const at = e.dataTimestamps?.[name] ?? e.timestamp;
        if (at) times[field] = Date.parse(at);
      }
      gpu.values = values;
      gpu.times = times;
    }
    if (e.timestamp) gpu.sampleTime = Math.max(gpu.sampleTime, Date.parse(e.timestamp));
    if (e.observedAt) gpu.observedAt = Date.parse(e.observedAt);
    if (e.gpuId) gpu.uuid = e.gpuId;
    if (e.deviceName) gpu.model = e.deviceName;
    if (e.health) {
      if (e.eventType === 'GPU_HEALTH' || gpu.health?.state !== e.health.state) this.healthVersion++;
      gpu.health = e.health;
    }
    this.touch(key);
  }

  private applyMig(e: StreamEvent): void {
    if (!e.hostId || e.gpuIndex === undefined || e.migInstance === undefined) return;
    const gpu = this.gpus.get(gpuKey(e.clusterId, e.hostId, e.gpuIndex));
    if (!gpu) return;
    if (e.eventType === 'MIG_REMOVED') gpu.mig.delete(e.migInstance);
    else {
      const known = gpu.mig.get(e.migInstance) ?? { active: true, values: {} };
      known.active = e.eventType === 'MIG_UPDATE' ? (e.active ?? true) : false;
      if (e.data) {
        const values: Record<string, number> = {};
        for (const [name, value] of Object.entries(e.data)) values[fieldOf(name)] = value;
        known.values = values;
      }
      gpu.mig.set(e.migInstance, known);
    }
    this.touch(gpu.key);
  }

  private remove(key: string): void {
    if (this.gpus.delete(key)) this.structureChanged = true;
    this.touch(key);
  }

  /** Notify the listeners of GPU `key` at the next frame (e.g. its stale mark may have changed). */
  touchGpu(key: string): void {
    this.touch(key);
  }

  private touch(key: string): void {
    this.dirty.add(key);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => this.flush());
  }

  private flush(): void {
    this.scheduled = false;
    const dirty = [...this.dirty];
    const structure = this.structureChanged;
    this.structureChanged = false;
    // At most GPUS_PER_FRAME GPUs a frame: a round of 1,000 updates is spread over a few frames, so
    // the browser's style, layout and paint of the changed tiles never make one frame long. The rest
    // go first in the next frame, before what arrives meanwhile.
    this.dirty = new Set(dirty.slice(GPUS_PER_FRAME));
    if (this.dirty.size > 0) this.schedule();
    if (structure) for (const fn of this.structureListeners) fn();
    for (const key of dirty.slice(0, GPUS_PER_FRAME)) for (const fn of this.keyListeners.get(key) ?? []) fn();
    for (const fn of this.anyListeners) fn();
  }
}

/** The page's one store. */
export const fleet = new FleetStore();

type AlertListener = () => void;

/**
 * The alert instances the server's evaluator holds, from the /ws alert stream: a snapshot at each
 * (re)connect, then one change at a time. Resolved and cancelled alerts leave the list.
 */
export class AlertStore {
  readonly alerts = new Map<string, Alert>();
  /** Why the server sends no alerts (e.g. an older server), or '' while the stream works. */
  unavailable = '';
  /** True once a snapshot arrived. */
  loaded = false;
  private readonly listeners = new Set<AlertListener>();

  /** Run `fn` on every change; returns an unsubscribe function. */
  onChange(fn: AlertListener): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** The alerts held now (a snapshot replaces everything). */
  snapshot(alerts: Alert[]): void {
    this.alerts.clear();
    for (const a of alerts) if (a.state !== 'INACTIVE') this.alerts.set(a.id, a);
    this.loaded = true;
    this.unavailable = '';
    this.changed();
  }

  /** One change of state. */
  change(kind: string, alert: Alert): void {
    if (kind === 'RESOLVED' || kind === 'CANCELLED' || alert.state === 'INACTIVE')
      this.alerts.delete(alert.id);
    else this.alerts.set(alert.id, alert);
    this.changed();
  }

  /** The stream was refused or ended. */
  fail(message: string): void {
    this.unavailable = message;
    this.changed();
  }

  /** Firing alerts, for the menu's count. */
  get firing(): number {
    let n = 0;
    for (const a of this.alerts.values()) if (a.state === 'FIRING') n++;
    return n;
  }

  private changed(): void {
    for (const fn of this.listeners) fn();
  }
}

/** The page's alert list. */
export const alertStore = new AlertStore();
