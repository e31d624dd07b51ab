/**
 * Stream events as /ws JSON. The JSON of an event without a metrics filter is built once and shared
 * by every connection (a WeakMap keyed by the event), so fan-out to many clients serialises each
 * event once; a metrics filter narrows `data` and is serialised per subscription.
 */
import type { AlertNode } from '../../alerting/events.js';
import { fieldInfo } from '../../domain/catalog.js';
import { outlierReason } from '../../health/outlier-mark.js';
import type { LatestValue } from '../../domain/types.js';
import { eventCursor } from '../../events/cursor.js';
import { carriesMetrics, type CompiledFilter } from '../../events/filter.js';
import type { TelemetryEvent } from '../../events/types.js';

/** The `event` object of an `event` message. */
export interface EventJson {
  eventType: TelemetryEvent['eventType'];
  cursor: string;
  timestamp: string;
  observedAt: string | null;
  clusterId: string;
  hostId?: string;
  gpuId?: string;
  gpuIndex?: string;
  deviceName?: string;
  device?: string;
  /** MIG instance id (dcgm-exporter's `GPU_I_ID`) of a `MIG_*` event. */
  migInstance?: string;
  /** False on a record marked gone (its target's last scrape did not expose it). */
  active?: boolean;
  /** Latest values by friendly name (DCGM name for fields the catalog does not know). */
  data?: Record<string, number>;
  /** Sample time of each value in `data`, same keys. */
  dataTimestamps?: Record<string, string>;
  /** GPU events: the health the record stores (docs/alerting.md), times in RFC 3339. */
  health?: {
    state: string;
    since: string;
    reasons: { code: string; severity: string; message: string; since: string }[];
  };
  /** GPU_OUTLIER: the mark (null: back in line with its siblings). */
  outlier?: {
    signal: string;
    since: string;
    maxScore: number;
    meanDeviation: number;
    peers: number;
    message: string;
  } | null;
}

const iso = (ms: number): string => {
  const d = new Date(ms);
  return Number.isNaN(d.getTime()) ? new Date(0).toISOString() : d.toISOString();
};

function dataOf(metrics: Record<string, LatestValue>): {
  data: Record<string, number>;
  times: Record<string, string>;
} {
  const data: Record<string, number> = {};
  const times: Record<string, string> = {};
  for (const field of Object.keys(metrics).sort()) {
    const latest = metrics[field]!;
    if (!Number.isFinite(latest.value)) continue;
    const name = fieldInfo(field)?.friendlyName ?? field;
    data[name] = latest.value;
    times[name] = iso(latest.timestampMs);
  }
  return { data, times };
}

/** An event as /ws JSON, with `metrics` as its values. */
export function eventJson(e: TelemetryEvent, metrics: Record<string, LatestValue>): EventJson {
  const out: EventJson = {
    eventType: e.eventType,
    cursor: eventCursor(e),
    timestamp: iso(e.timestampMs),
    observedAt: e.observedAtMs > 0 ? iso(e.observedAtMs) : null,
    clusterId: e.clusterId,
  };
  if (e.hostId !== undefined) out.hostId = e.hostId;
  if (e.uuid) out.gpuId = e.uuid;
  if (e.gpuIndex !== undefined) out.gpuIndex = e.gpuIndex;
  if (e.modelName) out.deviceName = e.modelName;
  if (e.device) out.device = e.device;
  if (e.migInstance !== undefined) out.migInstance = e.migInstance;
  if (e.active !== undefined) out.active = e.active;
  if (e.health) {
    out.health = {
      state: e.health.state,
      since: iso(e.health.sinceMs),
      reasons: e.health.reasons.map((r) => ({
        code: r.code,
        severity: r.severity,
        message: r.message,
        since: iso(r.sinceMs),
      })),
    };
  }
  if (e.outlier !== undefined)
    out.outlier =
      e.outlier === null
        ? null
        : {
            signal: e.outlier.signal,
            since: iso(e.outlier.sinceMs),
            maxScore: e.outlier.maxScore,
            meanDeviation: e.outlier.meanDeviation,
            peers: e.outlier.peers,
            message: outlierReason(e.outlier).message,
          };
  if (carriesMetrics(e.eventType)) {
    const { data, times } = dataOf(metrics);
    out.data = data;
    out.dataTimestamps = times;
  }
  return out;
}

const shared = new WeakMap<TelemetryEvent, string>();

/** JSON text of `e` as a subscription with `filter` sees it. */
export function eventText(e: TelemetryEvent, filter: CompiledFilter): string {
  if (filter.fields) return JSON.stringify(eventJson(e, filter.project(e.metrics)));
  let text = shared.get(e);
  if (text === undefined) {
    text = JSON.stringify(eventJson(e, e.metrics));
    shared.set(e, text);
  }
  return text;
}

/** An alert as /ws shows it: labels and annotations as objects, times as ISO strings. */
export interface AlertJson {
  id: string;
  clusterId: string;
  fingerprint: string;
  name: string;
  state: AlertNode['state'];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  value: number;
  activeAt: string;
  firedAt: string | null;
  resolvedAt: string | null;
}

const isoOrNull = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** The /ws shape of an alert instance. */
export function alertJson(a: AlertNode): AlertJson {
  return {
    id: a.id,
    clusterId: a.clusterId,
    fingerprint: a.fingerprint,
    name: a.name,
    state: a.state,
    labels: Object.fromEntries(a.labels.map((l) => [l.name, l.value])),
    annotations: Object.fromEntries(a.annotations.map((l) => [l.name, l.value])),
    value: a.value,
    activeAt: new Date(a.activeAt).toISOString(),
    firedAt: isoOrNull(a.firedAt),
    resolvedAt: isoOrNull(a.resolvedAt),
  };
}
