// telemetryItemsJson writes the telemetry routes' body per series: it must give exactly the text
// JSON.stringify gives for the item views, whatever the strings, labels, values and aggregates.
import { describe, expect, it } from 'vitest';
import { telemetryItemsJson } from '../../src/api/telemetry-json.js';
import { telemetryItemView } from '../../src/api/views.js';
import type { StoredSample } from '../../src/ports/sample-store.js';
import { sample as baseSample } from '../support/samples.js';

const sharedLabels = { job: 'dcgm "exporter"', note: 'line\nbreak \u2028 ünïcode \\ slash', gpu: '0' };

/** Sample `i` of two series sharing one labels object, with strings that need escaping. */
function sample(i: number, over: Partial<StoredSample> = {}): StoredSample {
  return {
    ...baseSample({
      clusterId: 'c-1',
      hostname: 'host "quoted"',
      uuid: 'GPU-5fd4f087',
      metric: i % 2 === 0 ? 'DCGM_FI_DEV_GPU_UTIL' : 'DCGM_FI_DEV_GPU_TEMP',
      pod: 'pod-\t1',
      namespace: 'ns',
      labels: sharedLabels,
      timestampMs: Date.UTC(2025, 6, 18, 20, 42, 34) + i * 1000,
      value: i * 1.1,
    }),
    ...over,
  };
}

/** What the routes returned before: the item views through JSON.stringify. */
const reference = (samples: StoredSample[]) =>
  JSON.stringify(
    samples.map((s) => {
      const item: ReturnType<typeof telemetryItemView> & { aggregate?: unknown } = telemetryItemView(s);
      if (s.aggregate) item.aggregate = s.aggregate;
      return item;
    }),
  );

describe('telemetryItemsJson', () => {
  it('equals JSON.stringify of the item views, text for text', () => {
    const samples = [
      ...Array.from({ length: 20 }, (_, i) => sample(i)),
      // Same labels object, other scalar fields: a series of its own.
      sample(20, { hostname: 'other-host', gpuId: '7' }),
      sample(21, { labels: {}, value: 1e21 }),
      sample(22, { value: -0 }),
      sample(23, { value: 0.1 + 0.2 }),
      sample(24, { value: -123456.789e-10 }),
      sample(25, { aggregate: { min: 1, max: 99.5, avg: 42.25, count: 120, last: 7 } }),
    ];
    const text = telemetryItemsJson(samples);
    expect(text).toBe(reference(samples));
    const parsed = JSON.parse(text) as { hostname: string; labels: object }[];
    expect(parsed).toHaveLength(26);
    expect(parsed[20]!.hostname).toBe('other-host');
    expect(parsed[21]!.labels).toEqual({});
  });

  it('gives an empty array for no samples', () => {
    expect(telemetryItemsJson([])).toBe('[]');
  });
});
