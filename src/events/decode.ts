/**
 * Turns coordination watch events and range reads of the live hierarchy into telemetry events.
 * The key says what a record is (cluster, host, GPU, MIG instance); the value supplies the rest. A
 * GPU or instance record marked gone (`goneSinceMs`) is a GPU_INACTIVE / MIG_INACTIVE event; a GPU
 * record whose write changed its health (`health.changed`) is a GPU_HEALTH event. Values
 * that do not parse give an event without data rather than an error: a stream never stops on one
 * record. Snapshots hold one event per GPU, never its MIG instances (a client that knows no
 * instances could take them for their GPU).
 */
import type { LatestValue } from '../domain/types.js';
import { parseStoredHealth } from '../health/parse.js';
import { parseOutlierMark } from '../health/outlier-mark.js';
import { parseOutlierKey, parseRecordKey } from '../hierarchy/paths.js';
import type { KeyValue, WatchEvent } from '../ports/coordination.js';
import type { TelemetryEvent } from './types.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const finite = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const text = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function parseObject(value: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(value);
    return isObject(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

/** Latest values with finite value and timestamp only. */
function metricsOf(value: unknown): Record<string, LatestValue> {
  const out: Record<string, LatestValue> = {};
  if (!isObject(value)) return out;
  for (const [field, latest] of Object.entries(value)) {
    if (isObject(latest) && finite(latest.value) && finite(latest.timestampMs)) {
      out[field] = { value: latest.value, timestampMs: latest.timestampMs };
    }
  }
  return out;
}

/** A put of a hierarchy key as an event (`snapshot` marks it as part of a snapshot). */
function fromKv(kv: KeyValue, revision: number, snapshot: boolean): TelemetryEvent | undefined {
  const outlier = parseOutlierKey(kv.key);
  if (outlier) {
    const mark = snapshot ? undefined : parseOutlierMark(kv.value);
    if (!mark) return undefined;
    return {
      eventType: 'GPU_OUTLIER',
      revision,
      clusterId: outlier.clusterId,
      hostId: outlier.hostname,
      gpuIndex: outlier.gpuId,
      uuid: mark.uuid,
      timestampMs: mark.judgedAtMs,
      observedAtMs: mark.judgedAtMs,
      metrics: {},
      outlier: mark,
    };
  }
  const parsed = parseRecordKey(kv.key);
  if (!parsed) return undefined;
  const v = parseObject(kv.value);
  const seen = finite(v.lastSeenMs) ? v.lastSeenMs : 0;
  if (parsed.kind === 'gpu' || parsed.kind === 'mig') {
    if (snapshot && parsed.kind === 'mig') return undefined;
    const gone = finite(v.goneSinceMs);
    const health = parsed.kind === 'gpu' ? parseStoredHealth(v.health) : undefined;
    const event: TelemetryEvent = {
      eventType: snapshot
        ? 'SNAPSHOT'
        : parsed.kind === 'gpu'
          ? gone
            ? 'GPU_INACTIVE'
            : health?.changed
              ? 'GPU_HEALTH'
              : 'GPU_UPDATE'
          : gone
            ? 'MIG_INACTIVE'
            : 'MIG_UPDATE',
      revision,
      clusterId: parsed.clusterId,
      hostId: parsed.hostname,
      gpuIndex: parsed.gpuId,
      uuid: text(v.uuid) ?? '',
      device: text(v.device) ?? '',
      modelName: text(v.modelName) ?? '',
      timestampMs: finite(v.lastSampleMs) && v.lastSampleMs > 0 ? v.lastSampleMs : seen,
      observedAtMs: seen,
      metrics: metricsOf(v.metrics),
      active: !gone,
    };
    if (parsed.kind === 'mig') event.migInstance = parsed.instance;
    if (health) event.health = { state: health.state, sinceMs: health.sinceMs, reasons: health.reasons };
    return event;
  }
  if (snapshot) return undefined;
  const base = { revision, clusterId: parsed.clusterId, timestampMs: seen, observedAtMs: seen, metrics: {} };
  return parsed.kind === 'host'
    ? { ...base, eventType: 'HOST_UPDATE', hostId: parsed.hostname }
    : { ...base, eventType: 'CLUSTER_UPDATE' };
}

/**
 * The telemetry event for one watch event under the hierarchy prefix, or undefined for keys that
 * are not cluster, host, GPU or MIG instance records. `now` stamps removals, whose record is gone; `index` is the
 * change's position within its revision (see cursor.ts).
 */
export function decodeWatchEvent(event: WatchEvent, now: number, index: number): TelemetryEvent | undefined {
  const decoded = decodeChange(event, now);
  if (decoded) decoded.index = index;
  return decoded;
}

function decodeChange(event: WatchEvent, now: number): TelemetryEvent | undefined {
  if (event.type === 'put') return fromKv(event.kv, event.revision, false);
  const outlier = parseOutlierKey(event.key);
  if (outlier)
    return {
      eventType: 'GPU_OUTLIER',
      revision: event.revision,
      clusterId: outlier.clusterId,
      hostId: outlier.hostname,
      gpuIndex: outlier.gpuId,
      timestampMs: now,
      observedAtMs: now,
      metrics: {},
      outlier: null,
    };
  const parsed = parseRecordKey(event.key);
  if (!parsed) return undefined;
  const base = {
    revision: event.revision,
    clusterId: parsed.clusterId,
    timestampMs: now,
    observedAtMs: 0,
    metrics: {},
  };
  if (parsed.kind === 'gpu')
    return { ...base, eventType: 'GPU_REMOVED', hostId: parsed.hostname, gpuIndex: parsed.gpuId };
  if (parsed.kind === 'mig')
    return {
      ...base,
      eventType: 'MIG_REMOVED',
      hostId: parsed.hostname,
      gpuIndex: parsed.gpuId,
      migInstance: parsed.instance,
    };
  if (parsed.kind === 'host') return { ...base, eventType: 'HOST_REMOVED', hostId: parsed.hostname };
  return { ...base, eventType: 'CLUSTER_REMOVED' };
}

/**
 * SNAPSHOT events (one per GPU record) of a range read served at `revision`. When `uuids` is given,
 * it receives the UUID of every GPU key (what a later removal of that key refers to).
 */
export function snapshotEvents(
  kvs: KeyValue[],
  revision: number,
  uuids?: Map<string, string>,
): TelemetryEvent[] {
  const out: TelemetryEvent[] = [];
  for (const kv of kvs) {
    const event = fromKv(kv, revision, true);
    if (!event) continue;
    out.push(event);
    if (uuids && event.uuid) uuids.set(kv.key, event.uuid);
  }
  return out;
}
