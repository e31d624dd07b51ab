// Properties of the remote-write decoder and mapper, which take outside bytes: arbitrary bodies
// (raw, snappy-compressed garbage, or WriteRequests with arbitrary labels and values) never throw
// anything but a RemoteWriteDecodeError, and every decoded sample is exactly one of: a stored row, a
// dead letter, a dropped staleness marker, or part of a dropped non-DCGM series.
import fc from 'fast-check';
import snappy from 'snappyjs';
import { describe, expect, it } from 'vitest';
import {
  RemoteWriteDecodeError,
  WriteRequestType,
  decodeWriteRequest,
  mapRemoteWrite,
} from '../../src/ingest/remote-write.js';

const NOW = Date.parse('2025-07-18T20:42:34Z');

const label = fc.record({
  name: fc.oneof(
    fc.constantFrom('__name__', 'gpu', 'UUID', 'Hostname', 'instance', 'job', 'modelName', 'device'),
    fc.string({ maxLength: 12 }),
  ),
  value: fc.oneof(
    fc.constantFrom('DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_TEMP', 'up', '0', '1', 'host-1:9400'),
    fc.string({ maxLength: 20 }),
  ),
});
const sample = fc.record({
  value: fc.oneof(fc.double(), fc.constantFrom(NaN, Infinity, -Infinity, 0, 42.5)),
  timestamp: fc.oneof(fc.constant(NOW), fc.integer({ min: -1e13, max: 1e15 })),
});
const series = fc.record({
  labels: fc.array(label, { maxLength: 8 }),
  samples: fc.array(sample, { maxLength: 4 }),
});

function body(timeseries: unknown[]): Uint8Array {
  return snappy.compress(WriteRequestType.encode(WriteRequestType.fromObject({ timeseries })).finish());
}

describe('remote write decoder and mapper (property)', () => {
  it('arbitrary bytes, raw or snappy-compressed, either decode or throw RemoteWriteDecodeError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, compress) => {
        const input = compress ? snappy.compress(bytes) : bytes;
        try {
          const decoded = decodeWriteRequest(input, 64 * 1024);
          mapRemoteWrite(decoded, { clusterId: 'c', now: () => NOW });
        } catch (error) {
          expect(error).toBeInstanceOf(RemoteWriteDecodeError);
        }
      }),
      { numRuns: 300 },
    );
  });

  it('every sample of a WriteRequest is a row, a dead letter, a staleness marker or in a dropped series', () => {
    fc.assert(
      fc.property(fc.array(series, { maxLength: 6 }), (timeseries) => {
        const decoded = decodeWriteRequest(body(timeseries));
        expect(decoded).toHaveLength(timeseries.length);
        const mapped = mapRemoteWrite(decoded, { clusterId: 'c', now: () => NOW });
        expect(mapped.rows.length).toBe(mapped.samples + mapped.deadLetters);
        expect(mapped.rows.filter((r) => r.ok).length).toBe(mapped.samples);
        const total = decoded.reduce((n, x) => n + x.samples.length, 0);
        const accounted = mapped.samples + mapped.deadLetters + mapped.staleMarkers;
        // Without a dropped series every sample is accounted for; a dropped series takes its samples.
        if (mapped.droppedSeries === 0) expect(accounted).toBe(total);
        else expect(accounted).toBeLessThan(total + 1);
      }),
      { numRuns: 200 },
    );
  });
});
