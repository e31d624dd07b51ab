// telemetryItemsJson writes the telemetry routes' body per series: it must give exactly the text
// JSON.stringify gives for the item views (the type derived from the telemetry response schema),
// whatever the strings, labels, values and aggregates, and that text must validate against the
// response schema, checked by fastify's own validator (ajv) with every object closed: the
// serializer sends only declared fields, so the writer must not add any.
import fc from 'fast-check';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { telemetryResponseSchema } from '../../src/api/schemas.js';
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

const SAMPLES = [
  ...Array.from({ length: 20 }, (_, i) => sample(i)),
  // Same labels object, other scalar fields: a series of its own.
  sample(20, { hostname: 'other-host', gpuId: '7' }),
  sample(21, { labels: {}, value: 1e21 }),
  sample(22, { value: -0 }),
  sample(23, { value: 0.1 + 0.2 }),
  sample(24, { value: -123456.789e-10 }),
  sample(25, { aggregate: { min: 1, max: 99.5, avg: 42.25, count: 120, last: 7 } }),
];

/** The reference: the schema-typed item views through JSON.stringify. */
const reference = (samples: StoredSample[]) => JSON.stringify(samples.map(telemetryItemView));

/**
 * `schema` with `additionalProperties: false` on every object that does not say otherwise: the
 * runtime twin of the `Closed` type in src/api/schemas.ts.
 */
function closed(schema: unknown): unknown {
  if (!schema || typeof schema !== 'object' || Array.isArray(schema)) return schema;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'properties') {
      out[key] = Object.fromEntries(Object.entries(value as object).map(([k, v]) => [k, closed(v)]));
    } else {
      out[key] = key === 'items' || key === 'additionalProperties' ? closed(value) : value;
    }
  }
  if (out.type === 'object' && !('additionalProperties' in out)) out.additionalProperties = false;
  return out;
}

// Fastify's validator compiler (ajv with formats) over the closed response schema, as a request
// body; no coercion and no removal of extra fields, so the text is checked as it is.
let validator: FastifyInstance;
beforeAll(async () => {
  validator = Fastify({
    ajv: { customOptions: { coerceTypes: false, removeAdditional: false, allErrors: true } },
    // Label names such as __proto__ are data here: parse them instead of refusing the body.
    onProtoPoisoning: 'ignore',
    onConstructorPoisoning: 'ignore',
  });
  validator.post(
    '/validate',
    { schema: { body: closed(telemetryResponseSchema) as object } },
    async () => 'ok',
  );
  await validator.ready();
});
afterAll(async () => validator?.close());

/** Validate `text` as a telemetry response body: undefined when valid, else ajv's message. */
async function schemaErrors(text: string): Promise<string | undefined> {
  const r = await validator.inject({
    method: 'POST',
    url: '/validate',
    headers: { 'content-type': 'application/json' },
    payload: text,
  });
  if (r.statusCode === 200) return undefined;
  return (r.json() as { message: string }).message;
}

describe('telemetryItemsJson', () => {
  it('equals JSON.stringify of the item views, text for text', () => {
    const text = telemetryItemsJson(SAMPLES);
    expect(text).toBe(reference(SAMPLES));
    const parsed = JSON.parse(text) as { hostname: string; labels: object }[];
    expect(parsed).toHaveLength(26);
    expect(parsed[20]!.hostname).toBe('other-host');
    expect(parsed[21]!.labels).toEqual({});
  });

  it('gives an empty array for no samples', () => {
    expect(telemetryItemsJson([])).toBe('[]');
  });

  it('validates against the telemetry response schema (closed), raw and rollup items alike', async () => {
    expect(await schemaErrors(telemetryItemsJson(SAMPLES))).toBeUndefined();
    expect(await schemaErrors(telemetryItemsJson([]))).toBeUndefined();
  });

  it('the schema check is strict: a missing, extra, mistyped or badly formatted field fails', async () => {
    const item = JSON.parse(telemetryItemsJson([SAMPLES[25]!])) as Record<string, unknown>[];
    const variants: [string, (i: Record<string, unknown>) => void][] = [
      ['missing', (i) => delete i.uuid],
      ['extra', (i) => (i.unit = 'W')],
      ['extra in aggregate', (i) => ((i.aggregate as Record<string, unknown>).sum = 1)],
      ['mistyped', (i) => (i.value = '1')],
      ['mistyped label', (i) => (i.labels = { gpu: 0 })],
      ['not a date-time', (i) => (i.timestamp = 'yesterday')],
    ];
    for (const [what, change] of variants) {
      const copy = structuredClone(item);
      change(copy[0]!);
      expect(await schemaErrors(JSON.stringify(copy)), what).toBeDefined();
    }
  });

  it('matches the reference and the schema for arbitrary samples (property)', async () => {
    const text = fc.string({ unit: 'binary', maxLength: 12 });
    const finite = fc.double({ noNaN: true, noDefaultInfinity: true });
    const arbSample = fc.record({
      metric: fc.constantFrom('DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_TEMP', 'x"\\y'),
      hostname: text,
      gpuId: fc.constantFrom('0', '1', '7'),
      uuid: text,
      pod: text,
      labels: fc.dictionary(text, text, { maxKeys: 3 }),
      timestampMs: fc.integer({ min: Date.UTC(1, 0, 1), max: Date.UTC(9999, 11, 31) }),
      value: finite,
      aggregate: fc.option(
        fc.record({ min: finite, max: finite, avg: finite, count: fc.nat(), last: finite }),
        { nil: undefined },
      ),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(arbSample, { maxLength: 8 }), async (drafts) => {
        const samples = drafts.map(({ aggregate, ...over }, i) =>
          sample(i, aggregate ? { ...over, aggregate } : over),
        );
        const json = telemetryItemsJson(samples);
        expect(json).toBe(reference(samples));
        expect(await schemaErrors(json)).toBeUndefined();
      }),
      { numRuns: Number(process.env.PROPERTY_RUNS ?? 150) },
    );
  });
});
