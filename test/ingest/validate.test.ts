// Unit tests of header mapping, RFC 3339 and value parsing, and per-row validation.
import { describe, expect, it } from 'vitest';
import { splitCsv } from '../../src/ingest/csv-records.js';
import {
  checkHeader,
  DCGM_COLUMNS,
  DEAD_LETTER_REASONS,
  MAX_IDENTITY_FIELD_BYTES,
  MAX_TIMESTAMP_MS,
  MIN_TIMESTAMP_MS,
  parseRfc3339,
  parseValue,
  RowValidator,
} from '../../src/ingest/validate.js';

describe('parseRfc3339', () => {
  it('accepts RFC 3339 date-times', () => {
    expect(parseRfc3339('2025-07-18T20:42:34Z')).toBe(Date.UTC(2025, 6, 18, 20, 42, 34));
    expect(parseRfc3339('2025-07-18t20:42:34.5z')).toBe(Date.UTC(2025, 6, 18, 20, 42, 34, 500));
    expect(parseRfc3339('2025-07-18 20:42:34.123456+02:00')).toBe(Date.UTC(2025, 6, 18, 18, 42, 34, 123));
    expect(parseRfc3339('2024-02-29T00:00:00-05:30')).toBe(Date.UTC(2024, 1, 29, 5, 30));
  });

  it('takes years 0000-0099 literally (Date.UTC would move them to 1900-1999)', () => {
    expect(parseRfc3339('0001-01-01T00:00:00Z')).toBe(MIN_TIMESTAMP_MS);
    expect(parseRfc3339('0001-01-01T00:00:00Z')).toBe(Date.parse('0001-01-01T00:00:00Z'));
    expect(new Date(parseRfc3339('0099-12-31T23:59:59.999Z')).toISOString()).toBe('0099-12-31T23:59:59.999Z');
    expect(new Date(parseRfc3339('0050-06-15T12:00:00+01:00')).toISOString()).toBe(
      '0050-06-15T11:00:00.000Z',
    );
    expect(new Date(parseRfc3339('0004-02-29T00:00:00Z')).toISOString()).toBe('0004-02-29T00:00:00.000Z');
    // Year 0000 (1 BC, a leap year) parses, one year before what the store holds.
    expect(parseRfc3339('0000-02-29T00:00:00Z')).toBe(Date.parse('0000-02-29T00:00:00Z'));
    expect(parseRfc3339('0000-12-31T23:59:59.999Z')).toBe(MIN_TIMESTAMP_MS - 1);
    expect(parseRfc3339('9999-12-31T23:59:59.999Z')).toBe(MAX_TIMESTAMP_MS);
    expect(parseRfc3339('0100-01-01T00:00:00Z')).toBe(Date.parse('0100-01-01T00:00:00Z'));
  });

  it('refuses everything else', () => {
    for (const bad of [
      '',
      '2025-07-18',
      '2025-07-18T20:42:34',
      '2025-02-30T00:00:00Z',
      '2023-02-29T00:00:00Z',
      '2025-13-01T00:00:00Z',
      '2025-07-18T24:00:00Z',
      '2025-07-18T20:42:34+0200',
      '2025-07-18T20:42:34.Z',
      '2025-07-18T20:42:34Zjunk',
      'Fri, 18 Jul 2025 20:42:34 GMT',
      '1752871354',
    ]) {
      expect(parseRfc3339(bad), bad).toBeNaN();
    }
  });
});

describe('parseValue', () => {
  it('parses decimals', () => {
    expect(parseValue('0')).toBe(0);
    expect(parseValue('156.596')).toBe(156.596);
    expect(parseValue('-1.5e3')).toBe(-1500);
    expect(parseValue(' 42 ')).toBe(42);
  });

  it('names non-finite and non-numeric values', () => {
    for (const s of ['NaN', 'nan', 'Infinity', '-Infinity', '+Inf', '-inf', '1e999']) {
      expect(parseValue(s), s).toBe('non_finite_value');
    }
    for (const s of ['', ' ', 'abc', '12abc', '0x10', '1,5', '--1', '.', 'e5']) {
      expect(parseValue(s), s).toBe('non_numeric_value');
    }
  });
});

describe('checkHeader', () => {
  it('maps columns by name, in any order and case', () => {
    const check = checkHeader(['value', 'HOSTNAME', 'uuid', 'gpu_id', 'metric_name', ' timestamp ', 'extra']);
    expect(check).toMatchObject({
      ok: true,
      width: 7,
      columns: {
        value: 0,
        Hostname: 1,
        uuid: 2,
        gpu_id: 3,
        metric_name: 4,
        timestamp: 5,
        labels_raw: -1,
        pod: -1,
      },
    });
  });

  it('names the missing required columns', () => {
    const check = checkHeader(['timestamp', 'metric_name', 'gpu_id', 'device']);
    expect(check.ok).toBe(false);
    if (!check.ok) {
      expect(check.missing).toEqual(['uuid', 'Hostname', 'value']);
      expect(check.detail).toMatch(/missing required column\(s\) uuid, Hostname, value/);
    }
  });
});

describe('RowValidator', () => {
  const header = checkHeader([...DCGM_COLUMNS]);
  if (!header.ok) throw new Error('header');
  const now = Date.UTC(2025, 6, 19);
  const validator = (timestamps: 'original' | 'now' = 'original') =>
    new RowValidator(header.columns, header.width, { source: 's.csv', clusterId: 'c1', timestamps }, [
      ...DCGM_COLUMNS,
    ]);
  const row = (over: Partial<Record<(typeof DCGM_COLUMNS)[number], string>> = {}): string => {
    const base: Record<string, string> = {
      timestamp: '2025-07-18T20:42:34Z',
      metric_name: 'DCGM_FI_DEV_GPU_TEMP',
      gpu_id: '3',
      device: 'nvidia3',
      uuid: 'GPU-1',
      modelName: 'NVIDIA H100 80GB HBM3',
      Hostname: 'h1',
      container: 'c',
      pod: 'p',
      namespace: 'ns',
      value: '63',
      labels_raw: 'gpu="3",pod="p"',
      ...over,
    };
    return DCGM_COLUMNS.map((k) => `"${base[k]!.replaceAll('"', '""')}"`).join(',') + '\n';
  };
  const validate = (text: string, v = validator()) =>
    splitCsv(text, { unescape: false }).map((r) => v.validate(r, now));

  it('builds a sample from a valid row', () => {
    const [r] = validate(row());
    expect(r).toEqual({
      ok: true,
      line: 1,
      sample: {
        clusterId: 'c1',
        hostname: 'h1',
        gpuId: '3',
        uuid: 'GPU-1',
        device: 'nvidia3',
        modelName: 'NVIDIA H100 80GB HBM3',
        metric: 'DCGM_FI_DEV_GPU_TEMP',
        container: 'c',
        pod: 'p',
        namespace: 'ns',
        labels: { gpu: '3', pod: 'p' },
        timestampMs: Date.UTC(2025, 6, 18, 20, 42, 34),
        value: 63,
      },
    });
  });

  it('refuses times the store cannot hold (years 0001-9999) up front, naming the reason', () => {
    const cases: [string, string][] = [
      ['0000-12-31T23:59:59Z', 'timestamp_out_of_range'],
      ['0001-01-01T00:30:00+01:00', 'timestamp_out_of_range'],
      ['9999-12-31T23:59:59Z', 'future_timestamp'],
    ];
    for (const [timestamp, reason] of cases) {
      const [r] = validate(row({ timestamp }));
      expect(r, timestamp).toMatchObject({ ok: false, deadLetter: { reason, line: 1 } });
      expect(Object.keys(DEAD_LETTER_REASONS)).toContain(reason);
    }
    const [old] = validate(row({ timestamp: '0000-06-01T00:00:00Z' }));
    expect(old).toMatchObject({
      ok: false,
      deadLetter: {
        detail: expect.stringMatching(
          /"0000-06-01T00:00:00Z" is 0000-06-01T00:00:00.000Z, outside the years 0001-9999/,
        ),
      },
    });
    for (const timestamp of ['0001-01-01T00:00:00Z', '0099-03-04T05:06:07Z']) {
      const [r] = validate(row({ timestamp }));
      expect(r, timestamp).toMatchObject({ ok: true, sample: { timestampMs: Date.parse(timestamp) } });
    }
  });

  it('judges the restamped time in "now" mode: a row far from the first is a dead letter, not a store failure', () => {
    const v = validator('now');
    const results = validate(
      row({ timestamp: '4000-01-01T00:00:00Z' }) +
        row({ timestamp: '4000-01-01T00:00:01Z', value: '1' }) +
        row({ timestamp: '9999-12-31T00:00:00Z', value: '2' }) +
        row({ timestamp: '0001-01-01T00:00:00Z', value: '3' }) +
        row({ timestamp: '4000-01-01T00:00:02Z', value: '4' }),
      v,
    );
    expect(results.map((r) => (r?.ok ? r.sample.timestampMs - now : r?.deadLetter.reason))).toEqual([
      0,
      1000,
      'future_timestamp',
      'timestamp_out_of_range',
      2000,
    ]);
    const far = results[2]!;
    if (!far.ok) expect(far.deadLetter.detail).toMatch(/restamped by .* ms .* ahead of now/);
    // A first row dated 9999 fixes the offset: rows dated 2025 land before year 0001.
    const w = validator('now');
    const shifted = validate(row({ timestamp: '9999-01-01T00:00:00Z' }) + row({ value: '5' }), w);
    expect(shifted.map((r) => (r?.ok ? r.sample.timestampMs : r?.deadLetter.reason))).toEqual([
      now,
      'timestamp_out_of_range',
    ]);
  });

  it(`refuses identity fields over ${MAX_IDENTITY_FIELD_BYTES} bytes, naming the column`, () => {
    const long = 'h'.repeat(MAX_IDENTITY_FIELD_BYTES + 1);
    const columns = [
      'Hostname',
      'metric_name',
      'uuid',
      'device',
      'modelName',
      'container',
      'pod',
      'namespace',
    ] as const;
    for (const column of columns) {
      const [r] = validate(row({ [column]: long }));
      expect(r, column).toMatchObject({
        ok: false,
        deadLetter: {
          reason: 'identity_field_too_long',
          detail: `${column} is ${MAX_IDENTITY_FIELD_BYTES + 1} bytes; identity fields may be at most 512 bytes (the store indexes them)`,
        },
      });
    }
    // The 4,000-character host and metric of the issue: refused, not passed on to the store.
    const [big] = validate(row({ Hostname: 'x'.repeat(4000), metric_name: 'm'.repeat(4000) }));
    expect(big).toMatchObject({ ok: false, deadLetter: { reason: 'identity_field_too_long' } });
    // Bytes, not characters: 171 three-byte characters are 513 bytes; 512 ASCII bytes pass.
    expect(validate(row({ pod: '日'.repeat(171) }))[0]).toMatchObject({ ok: false });
    expect(validate(row({ pod: 'p'.repeat(512), Hostname: 'é'.repeat(256) }))[0]).toMatchObject({
      ok: true,
      sample: { pod: 'p'.repeat(512) },
    });
    expect(Object.keys(DEAD_LETTER_REASONS)).toContain('identity_field_too_long');
  });

  it('refuses malformed labels_raw as bad_labels instead of keeping part of it', () => {
    const v = validator();
    const results = validate(
      row({ labels_raw: 'gpu="3",pod="p' }) +
        row({ labels_raw: 'gpu="3",po' }) +
        row({ labels_raw: 'gpu="3"x' }) +
        row({ labels_raw: 'gpu="3",pod="p"' }),
      v,
    );
    expect(results.map((r) => (r?.ok ? r.sample.labels : r?.deadLetter.reason))).toEqual([
      'bad_labels',
      'bad_labels',
      'bad_labels',
      { gpu: '3', pod: 'p' },
    ]);
    const first = results[0]!;
    if (!first.ok)
      expect(first.deadLetter.detail).toMatch(/labels_raw: the value of label "pod" is not closed/);
    expect(Object.keys(DEAD_LETTER_REASONS)).toContain('bad_labels');
  });

  it('restamps with the processing time in "now" mode', () => {
    const [r] = validate(row({ timestamp: '2030-01-01T00:00:00Z' }), validator('now'));
    expect(r).toMatchObject({ ok: true, sample: { timestampMs: now } });
  });

  it('follows a series whose labels or attribution change', () => {
    const v = validator();
    const results = validate(
      row() + row({ value: '64' }) + row({ labels_raw: 'gpu="3",pod="q"', pod: 'q' }) + row(),
      v,
    );
    const samples = results.map((r) => (r?.ok ? r.sample : null));
    expect(samples.map((s) => [s?.pod, s?.labels.pod, s?.value])).toEqual([
      ['p', 'p', 63],
      ['p', 'p', 64],
      ['q', 'q', 63],
      ['p', 'p', 63],
    ]);
    expect(Object.isFrozen(samples[0]!.labels)).toBe(true);
    expect(samples[0]!.labels).toBe(samples[1]!.labels);
  });

  it('names the reason of each bad row', () => {
    const cases: [string, string][] = [
      [row({ uuid: '' }), 'missing_field'],
      [row({ value: '' }), 'missing_field'],
      [row({ gpu_id: 'GPU-1' }), 'bad_gpu_id'],
      [row({ timestamp: 'yesterday' }), 'bad_timestamp'],
      [row({ timestamp: '2025-07-21T00:00:01Z' }), 'future_timestamp'],
      [row({ value: 'NaN' }), 'non_finite_value'],
      [row({ value: 'abc' }), 'non_numeric_value'],
      ['"a","b"\n', 'column_count'],
    ];
    for (const [text, reason] of cases) {
      const [r] = validate(text);
      expect(r, reason).toMatchObject({ ok: false, deadLetter: { reason, source: 's.csv', line: 1 } });
      expect(Object.keys(DEAD_LETTER_REASONS)).toContain(reason);
    }
  });

  it('skips a repeated header line and truncates long raw text', () => {
    const v = validator();
    expect(validate(DCGM_COLUMNS.join(',') + '\n', v)).toEqual([null]);
    const [r] = validate(row({ value: 'x'.repeat(3000) }), v);
    expect(r?.ok).toBe(false);
    if (r && !r.ok) expect(r.deadLetter.raw).toHaveLength(1000);
  });
});
