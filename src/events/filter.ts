/**
 * Subscription filters: checked once when a client subscribes (bad filters are BAD_REQUEST errors
 * naming the field), then applied to every event. A host or GPU filter keeps only events about that
 * host or GPU (a GPU's MIG instances included); a metrics filter keeps only GPU and MIG updates and
 * snapshots that carry at least one of the metrics, and narrows their data to those metrics, and
 * lets GPU_INACTIVE / MIG_INACTIVE and GPU_HEALTH through (a dashboard of those metrics must learn
 * that a GPU went away or changed health). An `eventTypes` filter with GPU_UPDATE also matches
 * GPU_HEALTH (a GPU update whose health changed). RESYNC markers always pass.
 */
import { fieldByFriendlyName, fieldInfo } from '../domain/catalog.js';
import type { LatestValue } from '../domain/types.js';
import { NexusError } from '../errors.js';
import { EVENT_TYPES, type EventFilter, type TelemetryEvent, type TelemetryEventType } from './types.js';

/** A checked filter. */
export interface CompiledFilter {
  /** The filter as given (for logs and acknowledgements). */
  readonly source: EventFilter;
  /** DCGM field names of the metrics filter, or undefined for every metric. */
  readonly fields: ReadonlySet<string> | undefined;
  /** Whether `event` is one the subscriber asked for. RESYNC markers always match. */
  matches(event: TelemetryEvent): boolean;
  /** The event's metrics narrowed to the filter. */
  project(metrics: Record<string, LatestValue>): Record<string, LatestValue>;
}

/** Whether events of this type are about one GPU (or one of its MIG instances). */
export const isGpuEvent = (type: TelemetryEventType): boolean =>
  type === 'GPU_UPDATE' ||
  type === 'GPU_HEALTH' ||
  type === 'GPU_INACTIVE' ||
  type === 'GPU_REMOVED' ||
  type === 'GPU_OUTLIER' ||
  type === 'SNAPSHOT' ||
  type === 'MIG_UPDATE' ||
  type === 'MIG_INACTIVE' ||
  type === 'MIG_REMOVED';

/** Whether events of this type carry a record's latest values. */
export const carriesMetrics = (type: TelemetryEventType): boolean =>
  type === 'GPU_UPDATE' || type === 'GPU_HEALTH' || type === 'SNAPSHOT' || type === 'MIG_UPDATE';

/** Longest id or name accepted in a filter. */
const MAX_TEXT = 256;
/** Most metric names in one filter. */
const MAX_METRICS = 64;
const DCGM_NAME = /^[A-Za-z0-9_:.-]{1,200}$/;

function bad(parameter: string, message: string): NexusError {
  return new NexusError('BAD_REQUEST', message, { details: { parameter } });
}

function checkText(name: string, value: string | undefined): void {
  if (value === undefined) return;
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT)
    throw bad(name, `${name} must be a non-empty string of at most ${MAX_TEXT} characters`);
}

/** DCGM field name for a friendly or DCGM metric name; unknown DCGM-like names are kept as given. */
export function resolveMetricName(name: string): string {
  const byFriendly = fieldByFriendlyName(name);
  if (byFriendly) return byFriendly.field;
  if (fieldInfo(name) || (/^DCGM_/.test(name) && DCGM_NAME.test(name))) return name;
  throw bad(
    'metrics',
    `unknown metric '${name.slice(0, 64)}': use a friendly name such as gpuUtilization or a DCGM field name`,
  );
}

/**
 * Check a filter and compile it. Throws NexusError BAD_REQUEST (naming the field) for an empty or
 * oversized value, a GPU index without a host, an unknown metric or event type.
 */
export function compileFilter(filter: EventFilter): CompiledFilter {
  checkText('clusterId', filter.clusterId);
  checkText('hostId', filter.hostId);
  checkText('gpuId', filter.gpuId);
  const gpuId = filter.gpuId;
  const gpuIsIndex = gpuId !== undefined && /^\d+$/.test(gpuId);
  if (gpuIsIndex && filter.hostId === undefined) {
    throw new NexusError(
      'AMBIGUOUS_GPU_ID',
      `gpuId '${gpuId}' is an index within a host and names a different GPU on every host: give hostId too, or use the GPU UUID`,
      { details: { parameter: 'gpuId' } },
    );
  }
  const uuid = gpuId !== undefined && !gpuIsIndex ? gpuId.toLowerCase() : undefined;

  let fields: Set<string> | undefined;
  if (filter.metrics !== undefined) {
    if (!Array.isArray(filter.metrics) || filter.metrics.length === 0 || filter.metrics.length > MAX_METRICS)
      throw bad('metrics', `metrics must list 1 to ${MAX_METRICS} metric names`);
    fields = new Set(filter.metrics.map((m) => (typeof m === 'string' ? resolveMetricName(m) : '')));
    if (fields.has('')) throw bad('metrics', 'metrics must be strings');
  }

  let types: Set<TelemetryEventType> | undefined;
  if (filter.eventTypes !== undefined) {
    if (!Array.isArray(filter.eventTypes) || filter.eventTypes.length === 0)
      throw bad('eventTypes', 'eventTypes must list at least one event type');
    for (const t of filter.eventTypes) {
      if (!(EVENT_TYPES as readonly string[]).includes(t))
        throw bad(
          'eventTypes',
          `unknown event type '${String(t).slice(0, 64)}' (known: ${EVENT_TYPES.join(', ')})`,
        );
    }
    types = new Set(filter.eventTypes);
    // A GPU_HEALTH event is a GPU_UPDATE too (with a health change): GPU_UPDATE subscribers get it.
    if (types.has('GPU_UPDATE')) types.add('GPU_HEALTH');
  }

  const matches = (e: TelemetryEvent): boolean => {
    if (e.eventType === 'RESYNC') return true;
    if (types && !types.has(e.eventType)) return false;
    if (filter.clusterId !== undefined && e.clusterId !== filter.clusterId) return false;
    // A filter on a host or GPU keeps only events about that host or GPU (or below it).
    if (filter.hostId !== undefined && e.hostId !== filter.hostId) return false;
    if (gpuId !== undefined) {
      if (!isGpuEvent(e.eventType)) return false;
      if (gpuIsIndex && e.gpuIndex !== gpuId) return false;
      if (uuid !== undefined && e.uuid?.toLowerCase() !== uuid) return false;
    }
    if (fields) {
      // A metrics filter keeps only GPU values that carry one of the metrics, and inactive marks.
      if (e.eventType === 'GPU_INACTIVE' || e.eventType === 'MIG_INACTIVE') return true;
      if (e.eventType === 'GPU_HEALTH' || e.eventType === 'GPU_OUTLIER') return true;
      if (!carriesMetrics(e.eventType)) return false;
      for (const field of Object.keys(e.metrics)) if (fields.has(field)) return true;
      return false;
    }
    return true;
  };

  const project = (metrics: Record<string, LatestValue>): Record<string, LatestValue> => {
    if (!fields) return metrics;
    const out: Record<string, LatestValue> = {};
    for (const [field, latest] of Object.entries(metrics)) if (fields.has(field)) out[field] = latest;
    return out;
  };

  return { source: filter, fields, matches, project };
}
