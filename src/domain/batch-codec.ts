/**
 * Wire format of a batch on the queue: compact JSON with each series written once per batch
 * (dictionary encoding), then the samples as [seriesIndex, timestampMs, value] triples.
 * Each series carries its full label set once per batch: 500 metric-major DCGM rows (500 distinct
 * series) encode to about 270 KiB, well below etcd's 1.5 MiB request limit.
 * The batch id is a hash of the source and the encoded rows, so the same rows from the same source
 * always get the same id, which is what lets the ledger recognise a replayed batch.
 */
import { createHash } from 'node:crypto';
import type { Batch, DeadLetter, Sample, ScrapePresence, SeriesKey } from './types.js';

const FORMAT_VERSION = 1;

interface WireBody {
  series: SeriesKey[];
  samples: [number, number, number][];
  deadLetters: DeadLetter[];
  /** Present on the last batch of a complete scrape (see {@link Batch.presence}). */
  presence?: ScrapePresence;
}

interface WireBatch extends WireBody {
  v: number;
  id: string;
  source: string;
}

/** Everything but the labels, as one string: with the labels object, it identifies a series in a batch. */
const scalarIdentity = (s: SeriesKey): string =>
  `${s.clusterId}\u0000${s.hostname}\u0000${s.gpuId}\u0000${s.uuid}\u0000${s.device}\u0000${s.modelName}\u0000${s.metric}\u0000${s.container}\u0000${s.pod}\u0000${s.namespace}`;

function encodeBody(samples: Sample[], deadLetters: DeadLetter[], presence?: ScrapePresence): string {
  // The parser shares one labels object per series, so keying on the object first avoids serialising
  // labels per sample. Equal labels in distinct objects only cost a repeated dictionary entry.
  const index = new Map<Record<string, string>, Map<string, number>>();
  const series: SeriesKey[] = [];
  const rows: [number, number, number][] = new Array(samples.length);
  for (let n = 0; n < samples.length; n++) {
    const s = samples[n]!;
    let byScalars = index.get(s.labels);
    if (!byScalars) index.set(s.labels, (byScalars = new Map()));
    const scalars = scalarIdentity(s);
    let i = byScalars.get(scalars);
    if (i === undefined) {
      i = series.length;
      byScalars.set(scalars, i);
      series.push({
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
      });
    }
    rows[n] = [i, s.timestampMs, s.value];
  }
  const body: WireBody = { series, samples: rows, deadLetters };
  if (presence !== undefined) body.presence = presence;
  return JSON.stringify(body);
}

/**
 * Encode rows into a batch: its content-derived id and the queue payload, computed in one pass.
 * The same rows from the same source give the same id; a scrape's `presence` is part of the
 * contents (two scrapes that read the same rows are two batches).
 */
export function encodeNewBatch(
  source: string,
  samples: Sample[],
  deadLetters: DeadLetter[],
  presence?: ScrapePresence,
): { id: string; payload: Uint8Array } {
  const body = encodeBody(samples, deadLetters, presence);
  const id = createHash('sha256').update(source).update('\u0000').update(body).digest('hex').slice(0, 32);
  const head = JSON.stringify({ v: FORMAT_VERSION, id, source });
  // head is `{...}` and body is `{...}`: splice them into one object.
  return { id, payload: Buffer.from(`${head.slice(0, -1)},${body.slice(1)}`, 'utf8') };
}

/** The id {@link encodeNewBatch} gives these rows. */
export function batchIdFor(source: string, samples: Sample[], deadLetters: DeadLetter[]): string {
  return encodeNewBatch(source, samples, deadLetters).id;
}

/** Encode a batch that already has an id (tests, dead-letter batches). */
export function encodeBatch(batch: Batch): Uint8Array {
  const head = JSON.stringify({ v: FORMAT_VERSION, id: batch.id, source: batch.source });
  const body = encodeBody(batch.samples, batch.deadLetters, batch.presence);
  return Buffer.from(`${head.slice(0, -1)},${body.slice(1)}`, 'utf8');
}

/** Decode a queue payload; throws on a payload that is not a batch of this format. */
export function decodeBatch(payload: Uint8Array): Batch {
  const wire = JSON.parse(
    Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'),
  ) as WireBatch;
  if (wire.v !== FORMAT_VERSION || typeof wire.id !== 'string' || !Array.isArray(wire.samples)) {
    throw new Error(`not a batch of format v${FORMAT_VERSION}`);
  }
  const samples: Sample[] = new Array(wire.samples.length);
  for (let n = 0; n < wire.samples.length; n++) {
    const [i, timestampMs, value] = wire.samples[n]!;
    const k = wire.series[i];
    if (!k) throw new Error(`batch ${wire.id}: sample refers to unknown series ${i}`);
    samples[n] = {
      clusterId: k.clusterId,
      hostname: k.hostname,
      gpuId: k.gpuId,
      uuid: k.uuid,
      device: k.device,
      modelName: k.modelName,
      metric: k.metric,
      container: k.container,
      pod: k.pod,
      namespace: k.namespace,
      labels: k.labels,
      timestampMs,
      value,
    };
  }
  const batch: Batch = { id: wire.id, source: wire.source, samples, deadLetters: wire.deadLetters ?? [] };
  if (wire.presence !== undefined) batch.presence = checkedPresence(wire.id, wire.presence);
  return batch;
}

/** The presence of a decoded batch, checked for shape (a payload from elsewhere is not trusted). */
function checkedPresence(id: string, value: unknown): ScrapePresence {
  const p = value as Partial<ScrapePresence> | null;
  const ok =
    typeof p === 'object' &&
    p !== null &&
    typeof p.target === 'string' &&
    typeof p.clusterId === 'string' &&
    typeof p.scrapeMs === 'number' &&
    Array.isArray(p.gpus) &&
    p.gpus.every(
      (g) =>
        typeof g === 'object' &&
        g !== null &&
        typeof g.hostname === 'string' &&
        typeof g.gpuId === 'string' &&
        typeof g.uuid === 'string' &&
        (g.migInstance === undefined || typeof g.migInstance === 'string'),
    );
  if (!ok) throw new Error(`batch ${id}: malformed presence`);
  return p as ScrapePresence;
}
