import { describe, expect, it } from 'vitest';
import { batchIdFor, decodeBatch, encodeBatch, encodeNewBatch } from '../../src/domain/batch-codec.js';
import { batch, sample } from '../support/samples.js';

describe('batch codec', () => {
  it('round-trips every field and writes each series once', () => {
    // The parser shares one labels object per series; the codec keys its dictionary on it.
    const labels = { a: 'x,"y"' };
    const samples = [
      sample({ value: 1.5, labels, pod: 'p1', namespace: 'ns', container: 'c' }),
      sample({
        value: 2,
        timestampMs: Date.parse('2025-07-18T20:42:35Z'),
        labels,
        pod: 'p1',
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
    const wire = JSON.parse(Buffer.from(encoded).toString('utf8')) as { series: unknown[] };
    expect(wire.series).toHaveLength(2);
  });

  it('gives the same id to the same rows and another id to other rows', () => {
    const a = [sample({ value: 1 })];
    expect(batchIdFor('f', a, [])).toBe(batchIdFor('f', [sample({ value: 1 })], []));
    expect(batchIdFor('f', a, [])).not.toBe(batchIdFor('f', [sample({ value: 2 })], []));
    expect(batchIdFor('f', a, [])).not.toBe(batchIdFor('g', a, []));
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
    const bad = JSON.parse(Buffer.from(empty.payload).toString('utf8')) as Record<string, unknown>;
    bad.presence = { target: 'x', clusterId: 'c', scrapeMs: 1, gpus: [{ hostname: 'h' }] };
    expect(() => decodeBatch(Buffer.from(JSON.stringify(bad)))).toThrow(/malformed presence/);
  });

  it('rejects payloads that are not batches', () => {
    expect(() => decodeBatch(Buffer.from('{"v":99}'))).toThrow(/format/);
    expect(() => decodeBatch(Buffer.from('not json'))).toThrow();
  });
});
