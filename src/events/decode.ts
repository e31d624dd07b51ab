/**
 * Turns coordination watch events and range reads of the live hierarchy into telemetry events.
 * The key says what a record is (cluster, host, GPU); the value supplies the rest. Values that do
 * not parse give an event without data rather than an error: a stream never stops on one record.
 */
import type { LatestValue } from '../domain/types.js';
import { parseKey } from '../hierarchy/paths.js';
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
  const parsed = parseKey(kv.key);
  if (!parsed) return undefined;
  const v = parseObject(kv.value);
  const seen = finite(v.lastSeenMs) ? v.lastSeenMs : 0;
  if (parsed.kind === 'gpu') {
    return {
      eventType: snapshot ? 'SNAPSHOT' : 'GPU_UPDATE',
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
    };
  }
  if (snapshot) return undefined;
  const base = { revision, clusterId: parsed.clusterId, timestampMs: seen, observedAtMs: seen, metrics: {} };
  return parsed.kind === 'host'
    ? { ...base, eventType: 'HOST_UPDATE', hostId: parsed.hostname }
    : { ...base, eventType: 'CLUSTER_UPDATE' };
}

/**
 * The telemetry event for one watch event under the hierarchy prefix, or undefined for keys that
 * are not cluster, host or GPU records. `now` stamps removals, whose record is gone; `index` is the
 * change's position within its revision (see cursor.ts).
 */
export function decodeWatchEvent(event: WatchEvent, now: number, index: number): TelemetryEvent | undefined {
  const decoded = decodeChange(event, now);
  if (decoded) decoded.index = index;
  return decoded;
}

function decodeChange(event: WatchEvent, now: number): TelemetryEvent | undefined {
  if (event.type === 'put') return fromKv(event.kv, event.revision, false);
  const parsed = parseKey(event.key);
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
