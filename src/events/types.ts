/**
 * Telemetry events: what the live hierarchy's writes look like to subscribers of GraphQL
 * subscriptions and the /ws stream. Every event carries the coordination revision of the write and
 * its index among that revision's changes (its cursor, see cursor.ts), so a client that reconnects
 * with the last cursor it saw resumes without a gap.
 */
import type { ResyncReason } from '../coordination/resync-watch.js';
import type { LatestValue } from '../domain/types.js';
import type { OutlierMark } from '../health/outlier-mark.js';
import type { GpuHealth } from '../health/types.js';

/** Kinds of events. SNAPSHOT and RESYNC are produced by the stream itself, not by a write. */
export const EVENT_TYPES = [
  'GPU_UPDATE',
  'GPU_HEALTH',
  'GPU_INACTIVE',
  'GPU_REMOVED',
  'GPU_OUTLIER',
  'MIG_UPDATE',
  'MIG_INACTIVE',
  'MIG_REMOVED',
  'HOST_UPDATE',
  'HOST_REMOVED',
  'CLUSTER_UPDATE',
  'CLUSTER_REMOVED',
  'SNAPSHOT',
  'RESYNC',
] as const;

/** One of {@link EVENT_TYPES}. */
export type TelemetryEventType = (typeof EVENT_TYPES)[number];

/** One event of the stream. */
export interface TelemetryEvent {
  eventType: TelemetryEventType;
  /**
   * Coordination revision of the write; for SNAPSHOT and RESYNC the revision the snapshot was read
   * at. A client resumes with the revision of the last event it processed.
   */
  revision: number;
  /**
   * Index of this change among the changes of its revision (0-based; one txn writes many records).
   * Absent for SNAPSHOT and RESYNC, which stand for the whole revision.
   */
  index?: number;
  /** Cluster of the record; empty for RESYNC. */
  clusterId: string;
  /** Host name, for host and GPU events. */
  hostId?: string;
  /** GPU index within its host, for GPU and MIG events. */
  gpuIndex?: string;
  /** MIG events: the GPU instance id (dcgm-exporter's `GPU_I_ID`) under the GPU. */
  migInstance?: string;
  /**
   * GPU and MIG puts (updates, inactive marks, snapshots): false when the record is marked gone (its
   * scrape target's newest complete scrape did not expose it). Staleness is not judged here.
   */
  active?: boolean;
  /** GPU UUID, for GPU events (except removals, whose record is gone). */
  uuid?: string;
  /** Device name (`nvidia0`) and model (`NVIDIA H100 80GB HBM3`), for GPU events. */
  device?: string;
  modelName?: string;
  /** Newest sample time of a GPU record (ms); for other events the write time. */
  timestampMs: number;
  /** When the collector wrote the record (ms, its wall clock); 0 when unknown (removals). */
  observedAtMs: number;
  /** Latest value of each metric by DCGM field name (GPU and MIG puts, SNAPSHOT). */
  metrics: Record<string, LatestValue>;
  /**
   * GPU puts and snapshots: the health the record stores (STALE, judged at read time, is not in it).
   * A GPU_HEALTH event is a GPU_UPDATE whose write changed the state or the set of reasons.
   */
  health?: GpuHealth;
  /**
   * GPU_OUTLIER only: the outlier watch's mark when the GPU began to depart from its siblings (or
   * its signal changed), null when it is back in line (src/health/outlier-mark.ts).
   */
  outlier?: OutlierMark | null;
  /** RESYNC only: why (see {@link ResyncReason}), and how many SNAPSHOT events follow. */
  resync?: { reason: ResyncReason; snapshotSize: number };
}

/** What a subscriber asks for. Absent fields match everything. */
export interface EventFilter {
  clusterId?: string;
  hostId?: string;
  /** A GPU UUID, or an index within `hostId` (an index alone is ambiguous and refused). */
  gpuId?: string;
  /** Metric names (friendly such as `gpuUtilization`, or DCGM field names). */
  metrics?: string[];
  eventTypes?: TelemetryEventType[];
}
