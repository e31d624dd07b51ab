/**
 * Wire format of a batch on the queue: compact JSON with each series written once per batch
 * (dictionary encoding), then the samples as [seriesIndex, timestampMs, value] triples.
 * Hundreds of DCGM rows encode to a few tens of KiB, far below etcd's request limit.
 */
import { createHash } from 'node:crypto';
import type { Batch, DeadLetter, Sample, SeriesKey } from './types.js';

const FORMAT_VERSION = 1;

interface WireBatch {
  v: number;
  id: string;
  source: string;
  series: SeriesKey[];
  samples: [number, number, number][];
  deadLetters: DeadLetter[];
}

/** Stable identity of a series inside one batch. */
function seriesIdentity(s: SeriesKey): string {
  return JSON.stringify([
    s.clusterId,
    s.hostname,
    s.gpuId,
    s.uuid,
    s.device,
    s.modelName,
    s.metric,
    s.container,
    s.pod,
    s.namespace,
    s.labels,
  ]);
}

function toSeriesKey(s: Sample): SeriesKey {
  return {
    clusterId: s.clusterId,
    hostname: s.hostname,
    gpuId: s.gpuId,
    uuid: s.uuid,
    device: s.device,
    modelName: s.modelName,
    metric: s.metric,
    container: s.container,
    pod: s.pod,
    namespace: s.namespace,
    labels: s.labels,
  };
}

/** Content hash of a batch's rows: the same rows from the same source give the same id. */
export function batchIdFor(source: string, samples: Sample[], deadLetters: DeadLetter[]): string {
  const hash = createHash('sha256');
  hash.update(source);
  for (const s of samples) hash.update(`\n${seriesIdentity(s)}|${s.timestampMs}|${s.value}`);
  for (const d of deadLetters) hash.update(`\n!${d.line}|${d.reason}`);
  return hash.digest('hex').slice(0, 32);
}

/** Encode a batch for the queue. */
export function encodeBatch(batch: Batch): Uint8Array {
  const index = new Map<string, number>();
  const series: SeriesKey[] = [];
  const samples: [number, number, number][] = [];
  for (const s of batch.samples) {
    const identity = seriesIdentity(s);
    let i = index.get(identity);
    if (i === undefined) {
      i = series.length;
      index.set(identity, i);
      series.push(toSeriesKey(s));
    }
    samples.push([i, s.timestampMs, s.value]);
  }
  const wire: WireBatch = {
    v: FORMAT_VERSION,
    id: batch.id,
    source: batch.source,
    series,
    samples,
    deadLetters: batch.deadLetters,
  };
  return Buffer.from(JSON.stringify(wire), 'utf8');
}

/** Decode a queue payload; throws on a payload that is not a batch of this format. */
export function decodeBatch(payload: Uint8Array): Batch {
  const wire = JSON.parse(Buffer.from(payload).toString('utf8')) as WireBatch;
  if (wire.v !== FORMAT_VERSION || typeof wire.id !== 'string' || !Array.isArray(wire.samples)) {
    throw new Error(`not a batch of format v${FORMAT_VERSION}`);
  }
  const samples: Sample[] = wire.samples.map(([i, timestampMs, value]) => {
    const key = wire.series[i];
    if (!key) throw new Error(`batch ${wire.id}: sample refers to unknown series ${i}`);
    return { ...key, timestampMs, value };
  });
  return { id: wire.id, source: wire.source, samples, deadLetters: wire.deadLetters ?? [] };
}
