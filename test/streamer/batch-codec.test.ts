// Batch codec: format 2 (binary, columnar) round-trips every field exactly, ids depend on the rows
// only, format 1 payloads queued by an older streamer still decode, and format 2 is the smaller.
import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  batchIdFor,
  decodeBatch,
  encodeBatch,
  encodeBatchesWithin,
  encodeLegacyBatch,
  MAX_BATCH_BYTES,
  encodeNewBatch,
  payloadText,
  sampleColumns,
} from '../../src/domain/batch-codec.js';
import type { Batch, DeadLetter, Sample, ScrapePresence } from '../../src/domain/types.js';
import { generateDcgmCsv } from '../../src/generate/generator.js';
import { readDcgm } from '../../src/ingest/dcgm-reader.js';
import { MAX_TS_MS, MIN_TS_MS } from '../../src/storage/refusals.js';
import { batch, sample } from '../support/samples.js';

const RUNS = { numRuns: 300, interruptAfterTimeLimit: 5000 };

/** How often `text` occurs in `payload` as UTF-8. */
function occurrences(payload: Uint8Array, text: string): number {
  const buf = Buffer.from(payload);
  let n = 0;
  for (let i = buf.indexOf(text); i >= 0; i = buf.indexOf(text, i + 1)) n++;
  return n;
}

/** `payload` copied to an offset of its memory that is not a multiple of 8. */
function unaligned(payload: Uint8Array): Uint8Array {
  const memory = new Uint8Array(payload.length + 3);
  memory.set(payload, 3);
  return memory.subarray(3);
}

/** Every sample with its own labels object (no sharing, as a second parser run might give). */
const unshared = (samples: Sample[]): Sample[] => samples.map((s) => ({ ...s, labels: { ...s.labels } }));

/** Samples parsed from generated DCGM CSV, as the streamer parses them. */
async function generated(options: Parameters<typeof generateDcgmCsv>[0]): Promise<Sample[]> {
  async function* chunks(): AsyncGenerator<string> {
    yield* generateDcgmCsv(options);
  }
  const samples: Sample[] = [];
  for await (const rows of readDcgm(chunks(), { source: 'g.csv', clusterId: 'c' })) {
    for (const r of rows) if (r.ok) samples.push(r.sample);
  }
  return samples;
}

describe('batch codec', () => {
  it('round-trips every field and writes each series and each string once', () => {
    // The parser shares one labels object per series; equal labels in another object are the same set.
    const labels = { a: 'x,"y"', zz: 'ünïcødé 🎉' };
    const samples = [
      sample({ value: 1.5, labels, pod: 'pod-one', namespace: 'ns', container: 'c' }),
      sample({
        value: 2,
        timestampMs: Date.parse('2025-07-18T20:42:35Z'),
        labels: { ...labels },
        pod: 'pod-one',
        namespace: 'ns',
        container: 'c',
      }),
      sample({ metric: 'DCGM_FI_DEV_GPU_TEMP', value: 48 }),
    ];
    const original = batch(samples, [
      { source: 's', line: 3, raw: 'x', reason: 'column_count', detail: 'd' },
    ]);
    const encoded = encodeBatch(original);
    expect(decodeBatch(encoded)).toEqual(original);
    expect(decodeBatch(unaligned(encoded))).toEqual(original);
    expect(occurrences(encoded, 'x,"y"')).toBe(1);
    expect(occurrences(encoded, 'ünïcødé 🎉')).toBe(1);
    expect(occurrences(encoded, 'pod-one')).toBe(1);
    expect(occurrences(encoded, 'DCGM_FI_DEV_GPU_UTIL')).toBe(1);
    expect(occurrences(encoded, 'NVIDIA H100 80GB HBM3')).toBe(1);
    // The two samples of one series share their labels object after decoding.
    const decoded = decodeBatch(encoded);
    expect(decoded.samples[0]!.labels).toBe(decoded.samples[1]!.labels);
  });

  it('carries every value and time a sample can hold unchanged, in both time encodings', () => {
    const values = [NaN, Infinity, -Infinity, -0, 0, 5e-324, -Number.MAX_VALUE, 0.1 + 0.2, 2 ** 53 + 2];
    const integral = [
      MIN_TS_MS,
      MAX_TS_MS,
      0,
      1,
      -1,
      Number.MAX_SAFE_INTEGER,
      -Number.MAX_SAFE_INTEGER,
      1e12,
    ];
    const anyTime = [...integral, -0, 0.5, NaN, Infinity, -Infinity, 8.64e15 + 1, 1e300];
    for (const times of [integral, anyTime]) {
      const samples = times.flatMap((timestampMs, i) => [
        sample({ timestampMs, value: values[i % values.length]!, labels: {} }),
        sample({ timestampMs, value: values[(i + 4) % values.length]!, gpuId: '1', labels: {} }),
      ]);
      const original = batch(samples);
      const decoded = decodeBatch(encodeBatch(original));
      expect(decoded).toEqual(original);
      // toEqual tells -0 from 0; check it where it matters all the same.
      expect(decoded.samples.map((s) => Object.is(s.value, -0))).toEqual(
        samples.map((s) => Object.is(s.value, -0)),
      );
      expect(decoded.samples.map((s) => Object.is(s.timestampMs, -0))).toEqual(
        samples.map((s) => Object.is(s.timestampMs, -0)),
      );
    }
  });

  it('round-trips strings UTF-8 cannot carry, empty strings, empty labels and a __proto__ label', () => {
    const labels: Record<string, string> = {};
    Object.defineProperty(labels, '__proto__', { value: 'p', enumerable: true, writable: true });
    labels['lone'] = 'a\uD800b';
    labels[''] = '';
    const samples = [
      sample({ hostname: '\uDFFF', uuid: '', labels }),
      sample({ hostname: 'h\u0000', labels: {} }),
      sample({ metric: 'é\uD83D', labels: { '\uDC00': '\u2028' } }),
    ];
    const original = batch(samples, [], 'src-\uD800');
    const decoded = decodeBatch(encodeBatch(original));
    expect(decoded).toEqual(original);
    expect(Object.getPrototypeOf(decoded.samples[0]!.labels)).toBe(Object.prototype);
    expect(Object.keys(decoded.samples[0]!.labels)).toEqual(['__proto__', 'lone', '']);
  });

  it('encodes an empty batch, with or without dead letters', () => {
    for (const deadLetters of [[], [{ source: 's', line: 1, raw: '', reason: 'r', detail: '' }]]) {
      const original = batch([], deadLetters);
      expect(decodeBatch(encodeBatch(original))).toEqual(original);
    }
  });

  it('uses 1, 2 and 4 byte series indexes as the series count needs them', () => {
    for (const series of [256, 257, 65_536, 65_537]) {
      const labels = {};
      const samples = Array.from({ length: series + 2 }, (_, i) =>
        sample({ uuid: `GPU-${i % series}`, value: i, labels }),
      );
      const original = batch(samples);
      const decoded = decodeBatch(encodeBatch(original));
      expect(decoded.samples).toHaveLength(series + 2);
      expect(decoded).toEqual(original);
    }
  });

  it('keeps the columns of a decoded batch, built into samples only when read, at any index width and offset', () => {
    for (const series of [3, 300, 70_000]) {
      const samples = Array.from({ length: series + 5 }, (_, i) =>
        sample({ uuid: `GPU-${i % series}`, value: i * 1.5, timestampMs: 1_700_000_000_000 + i }),
      );
      const original = batch(samples);
      const payload = encodeBatch(original);
      // The same bytes at an odd offset of a larger buffer: unaligned columns are copied.
      const shifted = new Uint8Array(payload.length + 1).subarray(1);
      shifted.set(payload);
      for (const bytes of [payload, shifted]) {
        const decoded = decodeBatch(bytes);
        const columns = sampleColumns(decoded)!;
        expect(columns.series).toHaveLength(series);
        expect(columns.seriesOf.BYTES_PER_ELEMENT).toBe(series <= 256 ? 1 : series <= 65_536 ? 2 : 4);
        expect([...columns.seriesOf.slice(0, 4)]).toEqual(series === 3 ? [0, 1, 2, 0] : [0, 1, 2, 3]);
        expect(columns.seriesOf[series + 4]).toBe(4 % series);
        expect(columns.values[7]).toBe(10.5);
        expect(columns.times[7]).toBe(1_700_000_000_007);
        expect(columns.series[columns.seriesOf[series + 1]!]!.uuid).toBe(`GPU-${(series + 1) % series}`);
        expect(decoded.samples).toEqual(samples);
        expect(decoded.samples).toBe(decoded.samples); // built once
      }
    }
    // A batch that did not come from decodeBatch, or a copy of one, has no columns.
    const decoded = decodeBatch(encodeBatch(batch([sample({ value: 1 }), sample({ value: 2 })])));
    expect(sampleColumns(batch([sample({})]))).toBeUndefined();
    expect(sampleColumns({ ...decoded })).toBeUndefined();
    // Replacing the samples drops the columns, so no reader sees the old rows.
    decoded.samples = [decoded.samples[1]!];
    expect(sampleColumns(decoded)).toBeUndefined();
    expect(decoded.samples.map((s) => s.value)).toEqual([2]);
  });

  it('round-trips generated batches exactly (property)', () => {
    const unit = fc.oneof(
      { weight: 8, arbitrary: fc.string({ unit: 'grapheme', maxLength: 6 }) },
      { weight: 1, arbitrary: fc.constantFrom('', '\uD800', '\uDFFF', '__proto__', 'constructor', '"\\') },
    );
    const text = fc.oneof(unit, fc.string({ maxLength: 8 }));
    const labelSet = fc.dictionary(text, text, { maxKeys: 5 });
    const seriesKey = fc.record({
      clusterId: text,
      hostname: text,
      gpuId: fc.constantFrom('0', '1', '7'),
      uuid: text,
      device: text,
      modelName: text,
      metric: text,
      container: text,
      pod: text,
      namespace: text,
      labels: labelSet,
    });
    const time = fc.oneof(
      fc.integer({ min: MIN_TS_MS, max: MAX_TS_MS }),
      fc.double(),
      fc.constantFrom(1_752_871_354_000, -0),
    );
    const deadLetter: fc.Arbitrary<DeadLetter> = fc.record({
      source: text,
      line: fc.nat(),
      raw: text,
      reason: text,
      detail: text,
    });
    const presence: fc.Arbitrary<ScrapePresence | undefined> = fc.option(
      fc.record({
        target: text,
        clusterId: text,
        scrapeMs: fc.integer(),
        gpus: fc.array(fc.record({ hostname: text, gpuId: text, uuid: text }), { maxLength: 3 }),
      }),
      { nil: undefined },
    );
    const input = fc.record({
      series: fc.array(seriesKey, { minLength: 1, maxLength: 6 }),
      rows: fc.array(fc.tuple(fc.nat(), time, fc.double()), { maxLength: 40 }),
      deadLetters: fc.array(deadLetter, { maxLength: 2 }),
      presence,
      source: text,
    });
    fc.assert(
      fc.property(input, ({ series, rows, deadLetters, presence, source }) => {
        const samples = rows.map(([i, timestampMs, value]) => ({
          ...series[i % series.length]!,
          timestampMs,
          value,
        }));
        const { id, payload } = encodeNewBatch(source, samples, deadLetters, presence);
        const original: Batch = { id, source, samples, deadLetters };
        if (presence !== undefined) original.presence = presence;
        expect(decodeBatch(payload)).toEqual(original);
        expect(decodeBatch(unaligned(payload))).toEqual(original);
        const reencoded = encodeBatch(original);
        expect(decodeBatch(reencoded)).toEqual(original);
        // A decoded batch encodes to the bytes it was decoded from.
        expect(Buffer.from(encodeBatch(decodeBatch(reencoded))).equals(Buffer.from(reencoded))).toBe(true);
        // The bytes, and so the id, depend on the rows, not on which objects they share.
        const again = encodeNewBatch(source, unshared(samples), structuredClone(deadLetters), presence);
        expect(again.id).toBe(id);
        expect(Buffer.from(again.payload).equals(Buffer.from(payload))).toBe(true);
      }),
      RUNS,
    );
  });

  it('gives the same id to the same rows and another id to other rows', () => {
    const a = [sample({ value: 1 })];
    expect(batchIdFor('f', a, [])).toBe(batchIdFor('f', [sample({ value: 1 })], []));
    expect(batchIdFor('f', a, [])).not.toBe(batchIdFor('f', [sample({ value: 2 })], []));
    expect(batchIdFor('f', a, [])).not.toBe(batchIdFor('g', a, []));
    expect(batchIdFor('f', a, [])).not.toBe(batchIdFor('f', [sample({ value: 1, timestampMs: 1 })], []));
    expect(batchIdFor('f', a, [])).not.toBe(
      batchIdFor('f', [sample({ value: 1, labels: { gpu: '1' } })], []),
    );
    expect(batchIdFor('f', a, [])).not.toBe(
      batchIdFor('f', a, [{ source: 'f', line: 1, raw: '', reason: 'r', detail: '' }]),
    );
    expect(batchIdFor('f', [sample({ value: 0 })], [])).not.toBe(
      batchIdFor('f', [sample({ value: -0 })], []),
    );
    expect(batchIdFor('f', [...a, ...a], [])).not.toBe(batchIdFor('f', a, []));
    // Pinned: a change of these ids is a change of the wire format, and replays of batches queued
    // before it would no longer be recognised by the ledger.
    expect(batchIdFor('f', a, [])).toBe('3d82fbef5d79f13b60466e153efd473b');
  });

  it('writes the pinned bytes for parsed DCGM rows and for series sharing label sets, in any encoding order', async () => {
    // Pinned: the ledger recognises a replayed batch by its id, a hash of these bytes; a change of
    // the encoder that changes them is a change of the wire format.
    const rows = await generated({ hosts: 6, gpusPerHost: 8, metrics: 10, workloadFraction: 0.5, seed: 11 });
    // 20 series per label set (over the 8 a label set's series are searched linearly), some
    // label sets equal in content but distinct objects, keys in another order for one of them.
    const shared = Array.from({ length: 60 }, (_, i) =>
      sample({
        hostname: `h${i % 3}`,
        gpuId: String(i % 20),
        metric: `m${i % 2}`,
        labels: i % 3 === 0 ? { a: '1', b: '2' } : i % 3 === 1 ? { b: '2', a: '1' } : { a: '1', b: '2' },
        timestampMs: 1_752_871_354_000 + (i % 7) * 1000,
        value: i / 3,
      }),
    );
    const digest = (order: Sample[][]): string => {
      const hash = createHash('sha256');
      for (const samples of order) {
        for (let at = 0; at < samples.length; at += 200) {
          const { id, payload } = encodeNewBatch('pin.csv', samples.slice(at, at + 200), []);
          hash.update(id).update(payload);
        }
      }
      return hash.digest('hex');
    };
    const pinned = digest([rows, shared]);
    expect(pinned).toBe('e21d97a4e42e462c41a27397f4ad59306594f540d5ee372ab685c995371470d5');
    // Encoding other batches first, or the same rows as other objects, changes nothing.
    const other = digest([shared.slice().reverse(), rows.slice(100), unshared(rows), unshared(shared)]);
    expect(other).not.toBe(pinned);
    expect(digest([unshared(rows), unshared(shared)])).toBe(pinned);
    expect(digest([rows, shared])).toBe(pinned);
  });

  it('carries a scrape presence, which is part of the id, and refuses a malformed one', () => {
    const presence = {
      target: 'http://h:9400/metrics',
      clusterId: 'c',
      scrapeMs: 1_700_000_000_000,
      gpus: [
        { hostname: 'h', gpuId: '0', uuid: 'GPU-a' },
        { hostname: 'h', gpuId: '1', uuid: 'GPU-b', migInstance: '2' },
      ],
    };
    const empty = encodeNewBatch('http://h:9400/metrics', [], [], presence);
    expect(decodeBatch(empty.payload)).toEqual({
      id: empty.id,
      source: 'http://h:9400/metrics',
      samples: [],
      deadLetters: [],
      presence,
    });
    // The next scrape of the same rows is another batch (its presence differs by time).
    const next = encodeNewBatch('http://h:9400/metrics', [], [], {
      ...presence,
      scrapeMs: presence.scrapeMs + 10_000,
    });
    expect(next.id).not.toBe(empty.id);
    expect(encodeNewBatch('http://h:9400/metrics', [], []).id).not.toBe(empty.id);
    const malformed = { target: 'x', clusterId: 'c', scrapeMs: 1, gpus: [{ hostname: 'h' }] };
    const bad = encodeNewBatch('t', [], [], malformed as unknown as ScrapePresence);
    expect(() => decodeBatch(bad.payload)).toThrow(/malformed presence/);
    const legacy = JSON.parse(
      Buffer.from(encodeLegacyBatch(decodeBatch(empty.payload))).toString(),
    ) as Record<string, unknown>;
    legacy.presence = malformed;
    expect(() => decodeBatch(Buffer.from(JSON.stringify(legacy)))).toThrow(/malformed presence/);
  });

  it('decodes a format 1 payload as an older streamer queued it', () => {
    const v1 =
      '{"v":1,"id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","source":"old.csv","series":[' +
      '{"clusterId":"c1","hostname":"host-a","gpuId":"0","uuid":"GPU-aaaa-0","device":"nvidia0",' +
      '"modelName":"NVIDIA H100 80GB HBM3","metric":"DCGM_FI_DEV_GPU_UTIL","container":"","pod":"",' +
      '"namespace":"","labels":{"gpu":"0","é":"🎉"}}],"samples":[[0,1752871354000,42],[0,1752871364000,43.5]],' +
      '"deadLetters":[{"source":"old.csv","line":7,"raw":"x","reason":"column_count","detail":"d"}],' +
      '"presence":{"target":"t","clusterId":"c1","scrapeMs":1752871354000,"gpus":[]}}';
    const labels = { gpu: '0', é: '🎉' };
    expect(decodeBatch(Buffer.from(v1))).toEqual({
      id: '0f1e2d3c4b5a69788796a5b4c3d2e1f0',
      source: 'old.csv',
      samples: [
        sample({ labels, timestampMs: 1_752_871_354_000, value: 42 }),
        sample({ labels, timestampMs: 1_752_871_364_000, value: 43.5 }),
      ],
      deadLetters: [{ source: 'old.csv', line: 7, raw: 'x', reason: 'column_count', detail: 'd' }],
      presence: { target: 't', clusterId: 'c1', scrapeMs: 1_752_871_354_000, gpus: [] },
    });
    const finite = batch([sample(), sample({ metric: 'DCGM_FI_DEV_GPU_TEMP', timestampMs: 1 })]);
    expect(decodeBatch(encodeLegacyBatch(finite))).toEqual(finite);
  });

  it('a corrupted payload is refused with an Error or decodes to a batch whose every sample reads (property)', () => {
    const payload = encodeBatch(
      batch(
        Array.from({ length: 40 }, (_, i) =>
          sample({ gpuId: String(i % 5), value: i, timestampMs: 1_700_000_000_000 + i }),
        ),
      ),
    );
    // The series indexes are the payload's last bytes (one byte each here).
    const lastIndex = payload.length - 1;
    const bad = Buffer.from(payload);
    bad[lastIndex] = 200;
    expect(() => decodeBatch(bad)).toThrow(/unknown series 200/);
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat({ max: payload.length - 1 }), byte: fc.nat({ max: 255 }) }), {
          minLength: 1,
          maxLength: 4,
        }),
        (flips) => {
          const bytes = Buffer.from(payload);
          for (const { at, byte } of flips) bytes[at] = byte;
          let decoded: Batch;
          try {
            decoded = decodeBatch(bytes);
          } catch (error) {
            expect(error).toBeInstanceOf(Error);
            return;
          }
          const columns = sampleColumns(decoded)!;
          expect(decoded.samples).toHaveLength(columns.times.length);
          for (const s of decoded.samples) expect(typeof s.metric).toBe('string');
        },
      ),
      RUNS,
    );
  });

  it('rejects payloads that are not batches, truncated or with bytes after the end', () => {
    expect(() => decodeBatch(Buffer.from('{"v":99}'))).toThrow(/format/);
    expect(() => decodeBatch(Buffer.from('not json'))).toThrow(/format/);
    expect(() => decodeBatch(new Uint8Array())).toThrow(/format/);
    const payload = encodeBatch(
      batch(
        [sample(), sample({ gpuId: '1', value: NaN })],
        [{ source: 's', line: 1, raw: '', reason: 'r', detail: '' }],
      ),
    );
    expect(() => decodeBatch(Buffer.from([0x4e, 0x58, 0x42, 3, ...payload.subarray(4)]))).toThrow(/format/);
    for (let end = 0; end < payload.length; end++) {
      expect(() => decodeBatch(payload.subarray(0, end))).toThrow();
    }
    expect(() => decodeBatch(Buffer.concat([payload, Buffer.from([0])]))).toThrow(/after the end/);
    // A sample count far beyond the payload is refused before anything is allocated for it.
    const header = [0x4e, 0x58, 0x42, 2, 0, 0, 0, 0]; // magic, version, empty id and source, padding
    const counts = [0, 0, 0, 0xff, 0xff, 0xff, 0x7f, 0]; // no strings, sets, series; 2^28 - 1 samples
    expect(() => decodeBatch(Buffer.from([...header, ...counts]))).toThrow(/exceeds the payload/);
  });

  it('is a tenth of format 1 on a streamer batch of parsed DCGM rows, and never larger (property)', async () => {
    // 500 rows of one scrape: every row its own series with 12 labels (the etcd-mode batch).
    const rows = await generated({ hosts: 5, gpusPerHost: 10, metrics: 10, workloadFraction: 1, seed: 7 });
    expect(rows).toHaveLength(500);
    const { id, payload } = encodeNewBatch('g.csv', rows, []);
    const v1 = encodeLegacyBatch({ id, source: 'g.csv', samples: rows, deadLetters: [] });
    expect(payload.length).toBeLessThan(v1.length / 8);
    expect(decodeBatch(payload)).toEqual({ id, source: 'g.csv', samples: rows, deadLetters: [] });

    // Per sample, format 2 writes at most 8 + 8 + 4 bytes, format 1 at least 20 once times have 13
    // digits; each series, string and section costs format 2 less than format 1.
    const key = fc.record({
      hostname: fc.string({ maxLength: 4 }),
      metric: fc.string({ maxLength: 4 }),
      labels: fc.dictionary(fc.string({ maxLength: 3 }), fc.string({ maxLength: 3 }), { maxKeys: 3 }),
    });
    fc.assert(
      fc.property(
        fc.array(key, { minLength: 1, maxLength: 300 }),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1e12, max: MAX_TS_MS }), fc.double()), {
          maxLength: 300,
        }),
        (keys, triples) => {
          const samples = triples.map(([i, timestampMs, value]) =>
            sample({ ...keys[i % keys.length]!, timestampMs, value }),
          );
          const b = batch(samples);
          expect(encodeBatch(b).length).toBeLessThanOrEqual(encodeLegacyBatch(b).length);
        },
      ),
      { numRuns: 100, interruptAfterTimeLimit: 4000 },
    );
  });

  it('renders a payload readably for a whole-item dead letter', () => {
    const b = batch([sample()]);
    const text = payloadText(encodeBatch(b), 1000);
    expect(text).toBe(Buffer.from(encodeLegacyBatch(b)).toString());
    expect(payloadText(encodeBatch(b), 20)).toBe(text.slice(0, 20));
    expect(payloadText(Buffer.from('garbage that is not JSON'), 1000)).toBe('garbage that is not JSON');
    expect(payloadText(Buffer.from('garbage'), 3)).toBe('gar');
    expect(payloadText(Buffer.from([0x4e, 0x58, 0x42, 2, 9]), 1000)).toBe(
      'undecodable batch payload of 5 bytes: TlhCAgk=',
    );
  });
});

describe('encodeBatchesWithin', () => {
  const deadLetter = (line: number): DeadLetter => ({
    source: 'bad.csv',
    line,
    raw: `${'x'.repeat(900)},${line}`,
    reason: 'non_numeric_value',
    detail: 'value "x" is not a number',
  });

  it('keeps a batch whole under the bound, and splits 2,000 long dead letters into parts under it', () => {
    const samples = Array.from({ length: 2000 }, (_, i) =>
      sample({ gpuId: String(i % 8), value: i, timestampMs: 1e12 + i }),
    );
    const whole = encodeBatchesWithin('s', samples, []);
    expect(whole).toHaveLength(1);
    expect(whole[0]!.id).toBe(encodeNewBatch('s', samples, []).id);

    const dead = Array.from({ length: 2000 }, (_, i) => deadLetter(i + 2));
    const mixed = [...samples.slice(0, 10)];
    const presence: ScrapePresence = {
      target: 'http://h:9400/metrics',
      clusterId: 'c1',
      scrapeMs: 1e12,
      gpus: [],
    };
    expect(encodeNewBatch('bad.csv', mixed, dead, presence).payload.byteLength).toBeGreaterThan(
      MAX_BATCH_BYTES,
    );
    const parts = encodeBatchesWithin('bad.csv', mixed, dead, presence);
    expect(parts.length).toBeGreaterThan(1);
    for (const part of parts) expect(part.payload.byteLength).toBeLessThanOrEqual(MAX_BATCH_BYTES);
    // Every row once, in order; the presence only on the last part; each payload decodes to its part.
    expect(parts.flatMap((p) => p.samples.map((x) => x.value))).toEqual(mixed.map((x) => x.value));
    expect(parts.flatMap((p) => p.deadLetters.map((d) => d.line))).toEqual(dead.map((d) => d.line));
    expect(parts.map((p) => p.presence !== undefined)).toEqual(parts.map((_, i) => i === parts.length - 1));
    for (const part of parts) {
      const decoded = decodeBatch(part.payload);
      expect(decoded.id).toBe(part.id);
      expect(decoded.deadLetters).toHaveLength(part.deadLetters.length);
      expect(decoded.samples).toHaveLength(part.samples.length);
    }
    // The same rows split the same way: the same ids again (a rerun is deduplicated).
    expect(encodeBatchesWithin('bad.csv', mixed, dead, presence).map((p) => p.id)).toEqual(
      parts.map((p) => p.id),
    );
    expect(new Set(parts.map((p) => p.id)).size).toBe(parts.length);
  });
});
