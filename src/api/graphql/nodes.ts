/**
 * Domain records as GraphQL source objects whose property names are the schema's field names
 * (relations are resolved separately). Pure functions; every Float goes through finiteOrNull.
 */
import { outlierReason } from '../../health/outlier-mark.js';
import { DCGM_FIELDS, fieldInfo } from '../../domain/catalog.js';
import type { LatestValue } from '../../domain/types.js';
import type { ServiceRecord } from '../../discovery/registry.js';
import { eventCursor } from '../../events/cursor.js';
import type { TelemetryEvent } from '../../events/types.js';
import { carriesMetrics } from '../../events/filter.js';
import type { ClusterSummary, GpuStatus, HostSummary, MigStatus } from '../../hierarchy/reader.js';
import type { StoredDeadLetter, StoredSample } from '../../ports/sample-store.js';
import { finiteOrNull, gpuStatusView, healthNode, type GpuHealthNode, type GpuStatusView } from './health.js';

/** A cluster. */
export interface ClusterNode {
  id: string;
  name: string;
  region: string;
  totalHosts: number;
  totalGPUs: number;
  activeHosts: number;
  activeGPUs: number;
  lastSeen: number;
}

/** A host. */
export interface HostNode {
  id: string;
  hostname: string;
  clusterId: string;
  active: boolean;
  lastSeen: number;
  gpuCount: number;
  activeGpuCount: number;
}

/** Latest value of one metric. */
export interface MetricValueNode {
  field: string;
  name: string | null;
  unit: string | null;
  kind: 'GAUGE' | 'COUNTER' | null;
  value: number | null;
  timestamp: number;
}

/** A GPU. */
export interface GpuNode {
  id: string;
  uuid: string;
  index: string;
  deviceName: string;
  device: string;
  modelName: string;
  hostId: string;
  clusterId: string;
  active: boolean;
  goneSince: number | null;
  lastSeen: number;
  lastSample: number | null;
  status: GpuStatusView;
  health: GpuHealthNode;
  metrics: MetricValueNode[];
  migInstances: MigInstanceNode[];
}

/** A MIG instance of a GPU. */
export interface MigInstanceNode {
  id: string;
  profile: string;
  gpuId: string;
  gpuIndex: string;
  hostId: string;
  clusterId: string;
  active: boolean;
  goneSince: number | null;
  lastSeen: number;
  lastSample: number | null;
  metrics: MetricValueNode[];
}

/** One stored sample. */
export interface SampleNode {
  timestamp: number;
  metric: string;
  name: string | null;
  unit: string | null;
  value: number | null;
  gpuId: string;
  gpuIndex: string;
  hostId: string;
  clusterId: string;
  container: string;
  pod: string;
  namespace: string;
  labels: { name: string; value: string }[];
  aggregate: {
    min: number | null;
    max: number | null;
    avg: number | null;
    count: number;
    last: number | null;
  } | null;
}

/** Values of a GPU by friendly name, plus every value. */
export type DataNode = Record<string, number | null | MetricValueNode[]> & { values: MetricValueNode[] };

/** One stream event. */
export interface EventNode {
  cursor: string;
  eventType: TelemetryEvent['eventType'];
  timestamp: number;
  observedAt: number | null;
  clusterId: string;
  hostId: string | null;
  gpuId: string | null;
  gpuIndex: string | null;
  migInstance: string | null;
  active: boolean | null;
  deviceName: string | null;
  data: DataNode | null;
  health: GpuHealthNode | null;
  resyncReason: string | null;
  snapshotSize: number | null;
  outlier: OutlierNode | null;
}

/** A peer-outlier mark as GraphQL's OutlierMark (times in ms; the DateTime scalar formats them). */
export interface OutlierNode {
  signal: string;
  since: number;
  maxScore: number;
  meanDeviation: number;
  peers: number;
  message: string;
}

export function clusterNode(c: ClusterSummary): ClusterNode {
  return {
    id: c.clusterId,
    name: c.name,
    region: c.region,
    totalHosts: c.totals.total_hosts,
    totalGPUs: c.totals.total_gpus,
    activeHosts: c.totals.active_hosts,
    activeGPUs: c.totals.active_gpus,
    lastSeen: c.lastSeenMs,
  };
}

export function hostNode(h: HostSummary): HostNode {
  return {
    id: h.hostname,
    hostname: h.hostname,
    clusterId: h.clusterId,
    active: h.active,
    lastSeen: h.lastSeenMs,
    gpuCount: h.gpuCount,
    activeGpuCount: h.activeGpuCount,
  };
}

/** One metric's latest value, named from the catalog. */
export function metricValueNode(field: string, latest: LatestValue): MetricValueNode {
  const info = fieldInfo(field);
  return {
    field,
    name: info?.friendlyName ?? null,
    unit: info?.unit ?? null,
    kind: info ? (info.kind === 'gauge' ? 'GAUGE' : 'COUNTER') : null,
    value: finiteOrNull(latest.value),
    timestamp: latest.timestampMs,
  };
}

/** Latest values ordered by field name. */
export function metricValues(metrics: Record<string, LatestValue>): MetricValueNode[] {
  return Object.keys(metrics)
    .sort()
    .map((field) => metricValueNode(field, metrics[field]!));
}

export function gpuNode(g: GpuStatus): GpuNode {
  return {
    id: g.uuid,
    uuid: g.uuid,
    index: g.gpuId,
    deviceName: g.modelName,
    device: g.device,
    modelName: g.modelName,
    hostId: g.hostname,
    clusterId: g.clusterId,
    active: g.active,
    goneSince: g.goneSinceMs ?? null,
    lastSeen: g.lastSeenMs,
    lastSample: g.lastSampleMs > 0 ? g.lastSampleMs : null,
    status: gpuStatusView(g),
    health: healthNode(g.gpuHealth),
    metrics: metricValues(g.metrics),
    migInstances: g.migInstances.map(migInstanceNode),
  };
}

export function migInstanceNode(m: MigStatus): MigInstanceNode {
  return {
    id: m.instance,
    profile: m.profile,
    gpuId: m.uuid,
    gpuIndex: m.gpuId,
    hostId: m.hostname,
    clusterId: m.clusterId,
    active: m.active,
    goneSince: m.goneSinceMs ?? null,
    lastSeen: m.lastSeenMs,
    lastSample: m.lastSampleMs > 0 ? m.lastSampleMs : null,
    metrics: metricValues(m.metrics),
  };
}

export function sampleNode(s: StoredSample): SampleNode {
  const info = fieldInfo(s.metric);
  return {
    timestamp: s.timestampMs,
    metric: s.metric,
    name: info?.friendlyName ?? null,
    unit: info?.unit ?? null,
    value: finiteOrNull(s.value),
    gpuId: s.uuid,
    gpuIndex: s.gpuId,
    hostId: s.hostname,
    clusterId: s.clusterId,
    container: s.container,
    pod: s.pod,
    namespace: s.namespace,
    labels: Object.keys(s.labels)
      .sort()
      .map((name) => ({ name, value: s.labels[name]! })),
    aggregate: s.aggregate
      ? {
          min: finiteOrNull(s.aggregate.min),
          max: finiteOrNull(s.aggregate.max),
          avg: finiteOrNull(s.aggregate.avg),
          count: s.aggregate.count,
          last: finiteOrNull(s.aggregate.last),
        }
      : null,
  };
}

export function deadLetterNode(d: StoredDeadLetter) {
  return {
    id: String(d.id),
    source: d.source,
    line: d.line,
    raw: d.raw,
    reason: d.reason,
    detail: d.detail,
    receivedAt: d.receivedAtMs,
  };
}

export function serviceNode(r: ServiceRecord) {
  const started = Date.parse(r.startedAt);
  return {
    type: String(r.type).toUpperCase(),
    id: r.id,
    address: r.address ?? '',
    version: r.version ?? '',
    startedAt: Number.isFinite(started) ? started : null,
    health: r.health === 'degraded' ? 'DEGRADED' : 'OK',
    pid: Number.isSafeInteger(r.pid) && Math.abs(r.pid) < 2 ** 31 ? r.pid : null,
    hostname: typeof r.hostname === 'string' ? r.hostname : null,
  };
}

export function metricInfoNodes() {
  return DCGM_FIELDS.map((f) => ({
    field: f.field,
    name: f.friendlyName,
    unit: f.unit,
    kind: f.kind === 'gauge' ? 'GAUGE' : 'COUNTER',
    description: f.description,
  }));
}

/** Values by friendly name (null when absent), and the full list. */
export function dataNode(metrics: Record<string, LatestValue>): DataNode {
  const values = metricValues(metrics);
  const data: DataNode = { values };
  for (const f of DCGM_FIELDS) data[f.friendlyName] = finiteOrNull(metrics[f.field]?.value);
  return data;
}

/** A stream event as GraphQL's TelemetryEvent; `metrics` are the (filtered) values to show. */
export function eventNode(e: TelemetryEvent, metrics: Record<string, LatestValue>): EventNode {
  const withData = carriesMetrics(e.eventType);
  return {
    cursor: eventCursor(e),
    eventType: e.eventType,
    timestamp: e.timestampMs,
    observedAt: e.observedAtMs > 0 ? e.observedAtMs : null,
    clusterId: e.clusterId,
    hostId: e.hostId ?? null,
    gpuId: e.uuid || null,
    gpuIndex: e.gpuIndex ?? null,
    migInstance: e.migInstance ?? null,
    active: e.active ?? null,
    deviceName: e.modelName || null,
    data: withData ? dataNode(metrics) : null,
    health: e.health ? healthNode(e.health) : null,
    resyncReason: e.resync ? e.resync.reason.toUpperCase() : null,
    snapshotSize: e.resync ? e.resync.snapshotSize : null,
    outlier: e.outlier
      ? {
          signal: e.outlier.signal,
          since: e.outlier.sinceMs,
          maxScore: e.outlier.maxScore,
          meanDeviation: e.outlier.meanDeviation,
          peers: e.outlier.peers,
          message: outlierReason(e.outlier).message,
        }
      : null,
  };
}
