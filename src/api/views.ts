/**
 * Domain records to the API's JSON shapes (snake_case, RFC 3339 times). Pure functions. The shapes
 * are not written here: each view type is derived from its response schema in schemas.ts
 * (`FromSchema`), so a view that misses a required field or adds one the schema lacks fails to
 * compile.
 */
import type { FromSchema } from 'json-schema-to-ts';
import type { ServiceRecord } from '../discovery/registry.js';
import type { GpuHealth } from '../health/types.js';
import type { ClusterSummary, GpuStatus, HostSummary, MigStatus } from '../hierarchy/reader.js';
import type { StoredDeadLetter, StoredGpu, StoredSample } from '../ports/sample-store.js';
import type {
  clusterSchema,
  deadLetterSchema,
  gpuHealthEntrySchema,
  gpuHealthSchema,
  gpuSchema,
  gpuSummarySchema,
  hostSchema,
  migInstanceSchema,
  serviceSchema,
  telemetryResponseSchema,
} from './schemas.js';

/** RFC 3339 (UTC, millisecond precision) for a time in ms since the epoch. */
export function rfc3339(ms: number): string {
  const date = new Date(ms);
  return Number.isNaN(date.getTime()) ? new Date(0).toISOString() : date.toISOString();
}

/** The guide's cluster shape. */
export type ClusterView = FromSchema<typeof clusterSchema>;

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
export type HostView = FromSchema<typeof hostSchema>;

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
export type GpuView = FromSchema<typeof gpuSchema>;

/** Latest values ordered by field name, times in RFC 3339. */
function metricsView(metrics: GpuStatus['metrics']): GpuView['metrics'] {
  const out: GpuView['metrics'] = {};
  for (const field of Object.keys(metrics).sort()) {
    const latest = metrics[field]!;
    out[field] = { value: latest.value, timestamp: rfc3339(latest.timestampMs) };
  }
  return out;
}

/** A MIG instance of a GPU. */
export type MigInstanceView = FromSchema<typeof migInstanceSchema>;

/** A MIG instance status as the API shows it; metrics ordered by field name. */
export function migInstanceView(m: MigStatus): MigInstanceView {
  const view: MigInstanceView = {
    instance_id: m.instance,
    profile: m.profile,
    gpu_id: m.gpuId,
    uuid: m.uuid,
    hostname: m.hostname,
    cluster_id: m.clusterId,
    active: m.active,
    last_seen: rfc3339(m.lastSeenMs),
    last_sample: rfc3339(m.lastSampleMs),
    metrics: metricsView(m.metrics),
  };
  if (m.goneSinceMs !== undefined) view.gone_since = rfc3339(m.goneSinceMs);
  return view;
}

/**
 * A GPU status as the API shows it; metrics ordered by field name. `mig_instances` and
 * `gone_since` appear only when there is something to say.
 */
export function gpuView(g: GpuStatus): GpuView {
  const view: GpuView = {
    gpu_id: g.gpuId,
    uuid: g.uuid,
    device: g.device,
    model_name: g.modelName,
    hostname: g.hostname,
    cluster_id: g.clusterId,
    active: g.active,
    last_seen: rfc3339(g.lastSeenMs),
    last_sample: rfc3339(g.lastSampleMs),
    metrics: metricsView(g.metrics),
    health: healthView(g.gpuHealth),
  };
  if (g.goneSinceMs !== undefined) view.gone_since = rfc3339(g.goneSinceMs);
  if (g.migInstances.length > 0) view.mig_instances = g.migInstances.map(migInstanceView);
  return view;
}

/** A GPU's health. */
export type GpuHealthView = FromSchema<typeof gpuHealthSchema>;

/** Health as the API shows it: times in RFC 3339. */
export function healthView(h: GpuHealth): GpuHealthView {
  return {
    state: h.state,
    since: rfc3339(h.sinceMs),
    reasons: h.reasons.map((r) => {
      const reason: GpuHealthView['reasons'][number] = {
        code: r.code,
        severity: r.severity,
        message: r.message,
        since: rfc3339(r.sinceMs),
      };
      if (r.field !== undefined) reason.field = r.field;
      if (r.value !== undefined) reason.value = r.value;
      return reason;
    }),
  };
}

/** One GPU's health with its identity. */
export type GpuHealthEntryView = FromSchema<typeof gpuHealthEntrySchema>;

/** A GPU's identity and health (the health routes). */
export function gpuHealthEntryView(g: GpuStatus): GpuHealthEntryView {
  return {
    cluster_id: g.clusterId,
    hostname: g.hostname,
    gpu_id: g.gpuId,
    uuid: g.uuid,
    model_name: g.modelName,
    last_sample: rfc3339(g.lastSampleMs),
    health: healthView(g.gpuHealth),
  };
}

/** A GPU as listed by GET /api/v1/gpus. */
export type GpuSummaryView = FromSchema<typeof gpuSummarySchema>;

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

/** One sample as the telemetry routes return it; rollup buckets carry their `aggregate`. */
export type TelemetryItemView = FromSchema<typeof telemetryResponseSchema>[number];

/**
 * A stored sample as a telemetry item; the value is passed through untouched. The routes write
 * the same text directly (telemetry-json.ts); this is its reference.
 */
export function telemetryItemView(s: StoredSample): TelemetryItemView {
  const item: TelemetryItemView = {
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
  if (s.aggregate) {
    const { min, max, avg, count, last } = s.aggregate;
    item.aggregate = { min, max, avg, count, last };
  }
  return item;
}

/** One refused input row as the API shows it. */
export type DeadLetterView = FromSchema<typeof deadLetterSchema>;

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

/** A registered process as GET /api/v1/services lists it. */
export type ServiceView = FromSchema<typeof serviceSchema>;

/** A service-discovery record as the API shows it. */
export function serviceView(r: ServiceRecord): ServiceView {
  return {
    type: r.type,
    id: r.id,
    address: r.address,
    version: r.version,
    started_at: r.startedAt,
    health: r.health,
    pid: r.pid,
    hostname: r.hostname,
  };
}
