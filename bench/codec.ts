/**
 * Batch codec benchmark: encode and decode time and bytes per batch of the binary format 2 against
 * the JSON format 1, same process, on generated DCGM rows parsed as the streamer parses them
 * (10 metrics, Kubernetes attribution on every GPU: 12 labels per series).
 *
 * Cases: 500 samples of one scrape (50 GPUs x 10 metrics: every sample its own series, as the
 * streamer's 500-row batches are), 5,000 samples of one scrape (500 GPUs) and 5,000 samples of five
 * scrapes of 100 GPUs (1,000 series, five samples each). Format 1's encode includes the SHA-256 of
 * its text, as its `encodeNewBatch` did; format 2's is `encodeNewBatch` itself.
 * Each figure is the median of `--runs` runs (default 7) of about 50 ms each, after a warm-up; the
 * runs of the four measurements (v1/v2 encode/decode) of a case are interleaved.
 *
 *   npx tsx bench/codec.ts [--runs N]
 */
import { createHash } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { decodeBatch, encodeLegacyBatch, encodeNewBatch } from '../src/domain/batch-codec.js';
import type { Batch, Sample } from '../src/domain/types.js';
import { generateDcgmCsv } from '../src/generate/generator.js';
import { readDcgm } from '../src/ingest/dcgm-reader.js';

/** Figures of one format on one case. */
export interface FormatFigures {
  bytes: number;
  /** Median microseconds per batch. */
  encodeUs: number;
  decodeUs: number;
}

/** One case: both formats and the ratios v2 / v1. */
export interface CodecCase {
  name: string;
  samples: number;
  series: number;
  v1: FormatFigures;
  v2: FormatFigures;
}

/** Samples parsed from generated DCGM CSV. */
async function parsedSamples(hosts: number, scrapes: number): Promise<Sample[]> {
  const options = {
    hosts,
    gpusPerHost: 10,
    metrics: 10,
    durationMs: scrapes * 10_000,
    intervalMs: 10_000,
    workloadFraction: 1,
    seed: 7,
  };
  async function* chunks(): AsyncGenerator<string> {
    yield* generateDcgmCsv(options);
  }
  const samples: Sample[] = [];
  for await (const rows of readDcgm(chunks(), { source: 'bench.csv', clusterId: 'bench' })) {
    for (const r of rows) if (r.ok) samples.push(r.sample);
  }
  return samples;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** Calls of `fn` that take about 50 ms (after a warm-up of as many). */
function calibrate(fn: () => unknown): number {
  const t0 = performance.now();
  fn();
  const iterations = Math.max(5, Math.ceil(50 / Math.max(performance.now() - t0, 0.001)));
  for (let i = 0; i < iterations; i++) fn();
  return iterations;
}

/**
 * Median microseconds per call of each function over `runs` runs; the runs of the functions are
 * interleaved, so a change of machine load affects them alike.
 */
function timeInterleaved(fns: (() => unknown)[], runs: number): number[] {
  const iterations = fns.map(calibrate);
  const perCall: number[][] = fns.map(() => []);
  for (let run = 0; run < runs; run++) {
    fns.forEach((fn, k) => {
      const start = performance.now();
      for (let i = 0; i < iterations[k]!; i++) fn();
      perCall[k]!.push(((performance.now() - start) / iterations[k]!) * 1000);
    });
  }
  return perCall.map(median);
}

function encodeV1(batch: Batch): Uint8Array {
  const payload = encodeLegacyBatch(batch);
  createHash('sha256').update(batch.source).update('\u0000').update(payload).digest('hex');
  return payload;
}

/** Measure both formats on `samples`. */
function measure(name: string, samples: Sample[], runs: number): CodecCase {
  const { id, payload: v2 } = encodeNewBatch('bench.csv', samples, []);
  const batch: Batch = { id, source: 'bench.csv', samples, deadLetters: [] };
  const v1 = encodeV1(batch);
  const decoded = decodeBatch(v2);
  if (decoded.samples.length !== samples.length || decodeBatch(v1).samples.length !== samples.length) {
    throw new Error('codec bench: a decode lost samples');
  }
  const series = new Set(samples.map((s) => s.labels)).size;
  const [v1Encode, v2Encode, v1Decode, v2Decode] = timeInterleaved(
    [
      () => encodeV1(batch),
      () => encodeNewBatch('bench.csv', samples, []),
      () => decodeBatch(v1),
      () => decodeBatch(v2),
    ],
    runs,
  );
  return {
    name,
    samples: samples.length,
    series,
    v1: { bytes: v1.length, encodeUs: v1Encode!, decodeUs: v1Decode! },
    v2: { bytes: v2.length, encodeUs: v2Encode!, decodeUs: v2Decode! },
  };
}

/** Run every case. */
export async function benchCodec(runs = 7): Promise<CodecCase[]> {
  const oneScrape = await parsedSamples(5, 1);
  const wide = await parsedSamples(50, 1);
  const deep = await parsedSamples(10, 5);
  return [
    measure('500 samples, 1 scrape of 50 GPUs', oneScrape.slice(0, 500), runs),
    measure('5,000 samples, 1 scrape of 500 GPUs', wide.slice(0, 5000), runs),
    measure('5,000 samples, 5 scrapes of 100 GPUs', deep.slice(0, 5000), runs),
  ];
}

function print(cases: CodecCase[]): void {
  const f = (n: number): string => n.toLocaleString('en-US', { maximumFractionDigits: 0 });
  console.log(
    '| batch | series | v1 bytes | v2 bytes | v1 encode us | v2 encode us | v1 decode us | v2 decode us |',
  );
  console.log('|---|---|---|---|---|---|---|---|');
  for (const c of cases) {
    console.log(
      `| ${c.name} | ${f(c.series)} | ${f(c.v1.bytes)} | ${f(c.v2.bytes)} (${(c.v2.bytes / c.v1.bytes).toFixed(3)}x) | ` +
        `${f(c.v1.encodeUs)} | ${f(c.v2.encodeUs)} (${(c.v2.encodeUs / c.v1.encodeUs).toFixed(2)}x) | ` +
        `${f(c.v1.decodeUs)} | ${f(c.v2.decodeUs)} (${(c.v2.decodeUs / c.v1.decodeUs).toFixed(2)}x) |`,
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--runs');
  const runs = i > 0 ? Number(process.argv[i + 1]) : 7;
  print(await benchCodec(runs));
}
