/**
 * Domain records to the API's JSON shapes (snake_case, RFC 3339 times). Pure functions; the
 * response schemas in schemas.ts describe the same shapes.
 */
import type { ClusterSummary, GpuStatus, HostSummary } from '../hierarchy/reader.js';
import type { StoredDeadLetter, StoredGpu, StoredSample } from '../ports/sample-store.js';

/** RFC 3339 (UTC, millisecond precision) for a time in ms since the epoch. */
export function rfc3339(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString();
}

/** The guide's cluster shape. */
export interface ClusterView {
  cluster_id: string;
  cluster_name: string;
  region: string;
  metadata: { total_hosts: number; total_gpus: number; active_hosts: number; active_gpus: number };
}

/** A cluster summary in the guide's shape. */
export function clusterView(c: ClusterSummary): ClusterView {
  return {
    cluster_id: c.clusterId,
    cluster_name: c.name,
    region: c.region,
    metadata: {
      total_hosts: c.totals.total_hosts,
      total_gpus: c.totals.total_gpus,
      active_hosts: c.totals.active_hosts,
      active_gpus: c.totals.active_gpus,
    },
  };
}

/** A host as listed under a cluster. */
export interface HostView {
  host_id: string;
  hostname: string;
  cluster_id: string;
  gpu_count: number;
  active_gpu_count: number;
  active: boolean;
  last_seen: string;
}

/** A host summary as the API shows it. */
export function hostView(h: HostSummary): HostView {
  return {
    host_id: h.hostname,
    hostname: h.hostname,
    cluster_id: h.clusterId,
    gpu_count: h.gpuCount,
    active_gpu_count: h.activeGpuCount,
    active: h.active,
    last_seen: rfc3339(h.lastSeenMs),
  };
}

/** A GPU with its latest metrics. */
export interface GpuView {
  gpu_id: string;
  uuid: string;
  device: string;
  model_name: string;
  hostname: string;
  cluster_id: string;
  active: boolean;
  last_seen: string;
  last_sample: string;
  metrics: Record<string, { value: number; timestamp: string }>;
}

/** A GPU status as the API shows it; metrics ordered by field name. */
export function gpuView(g: GpuStatus): GpuView {
  const metrics: GpuView['metrics'] = {};
  for (const field of Object.keys(g.metrics).sort()) {
    const latest = g.metrics[field]!;
    metrics[field] = { value: latest.value, timestamp: rfc3339(latest.timestampMs) };
  }
  return {
    gpu_id: g.gpuId,
    uuid: g.uuid,
    device: g.device,
    model_name: g.modelName,
    hostname: g.hostname,
    cluster_id: g.clusterId,
    active: g.active,
    last_seen: rfc3339(g.lastSeenMs),
    last_sample: rfc3339(g.lastSampleMs),
    metrics,
  };
}

/** A GPU as listed by GET /api/v1/gpus. */
export interface GpuSummaryView {
  uuid: string;
  gpu_id: string;
  hostname: string;
  cluster_id: string;
  model: string;
  device: string;
}

/** A GPU's identity as the flat API lists it. */
export function gpuSummaryView(g: StoredGpu): GpuSummaryView {
  return {
    uuid: g.uuid,
    gpu_id: g.gpuId,
    hostname: g.hostname,
    cluster_id: g.clusterId,
    model: g.modelName,
    device: g.device,
  };
}

/** One sample as the telemetry routes return it. */
export interface TelemetryItemView {
  timestamp: string;
  metric_name: string;
  value: number;
  gpu_id: string;
  uuid: string;
  hostname: string;
  cluster_id: string;
  device: string;
  model_name: string;
  container: string;
  pod: string;
  namespace: string;
  labels: Record<string, string>;
}

/** A stored sample as a telemetry item; the value is passed through untouched. */
export function telemetryItemView(s: StoredSample): TelemetryItemView {
  return {
    timestamp: rfc3339(s.timestampMs),
    metric_name: s.metric,
    value: s.value,
    gpu_id: s.gpuId,
    uuid: s.uuid,
    hostname: s.hostname,
    cluster_id: s.clusterId,
    device: s.device,
    model_name: s.modelName,
    container: s.container,
    pod: s.pod,
    namespace: s.namespace,
    labels: s.labels,
  };
}

/** One refused input row as the API shows it. */
export interface DeadLetterView {
  id: number;
  source: string;
  line: number;
  raw: string;
  reason: string;
  detail: string;
  received_at: string;
}

/** A stored dead letter as the API shows it. */
export function deadLetterView(d: StoredDeadLetter): DeadLetterView {
  return {
    id: d.id,
    source: d.source,
    line: d.line,
    raw: d.raw,
    reason: d.reason,
    detail: d.detail,
    received_at: rfc3339(d.receivedAtMs),
  };
}
