// The DCGM reader end to end: the real sample, the broken-rows fixture, chunk boundaries, headers, errors.
import { createReadStream, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { DeadLetter, Sample } from '../../src/domain/types.js';
import { hasCode } from '../../src/errors.js';
import { DcgmParser, readDcgm, type DcgmReadOptions, type RowResult } from '../../src/ingest/dcgm-reader.js';

const SAMPLE = new URL('../../sample/dcgm_metrics_20250718_134233.csv', import.meta.url);
const BROKEN = new URL('../fixtures/broken.csv', import.meta.url);
/** A clock one day after the sample was taken, so its timestamps are in the past. */
const NOW = Date.UTC(2025, 6, 19, 20, 42, 34);
const OPTIONS: DcgmReadOptions = { source: 'test.csv', clusterId: 'c1', now: () => NOW };

async function collect(chunks: AsyncIterable<Buffer | string>, options: Partial<DcgmReadOptions> = {}) {
  const samples: (Sample & { line: number })[] = [];
  const deadLetters: DeadLetter[] = [];
  for await (const rows of readDcgm(chunks, { ...OPTIONS, ...options })) {
    for (const r of rows) {
      if (r.ok) samples.push({ ...r.sample, line: r.line });
      else deadLetters.push(r.deadLetter);
    }
  }
  return { samples, deadLetters };
}

/** Parse a buffer cut at the given offsets with the synchronous parser. */
function parseAt(input: Buffer, cuts: number[]): RowResult[] {
  const p = new DcgmParser(OPTIONS);
  const out: RowResult[] = [];
  let from = 0;
  for (const cut of [...cuts, input.length]) {
    out.push(...p.push(input.subarray(from, cut)));
    from = cut;
  }
  out.push(...p.end());
  return out;
}

async function* iterate<T>(items: T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

describe('readDcgm on the real sample', () => {
  it('parses all 2,470 rows to samples with no dead letters', async () => {
    const { samples, deadLetters } = await collect(createReadStream(SAMPLE, { highWaterMark: 64 * 1024 }));
    expect(deadLetters).toEqual([]);
    expect(samples).toHaveLength(2470);
    expect(new Set(samples.map((s) => s.uuid)).size).toBe(247);
    expect(new Set(samples.map((s) => s.hostname)).size).toBe(31);
    expect(new Set(samples.map((s) => s.metric)).size).toBe(10);
    expect(samples[0]!.line).toBe(2);
    expect(samples[2469]!.line).toBe(2471);
    expect(samples.every((s) => s.clusterId === 'c1' && s.modelName === 'NVIDIA H100 80GB HBM3')).toBe(true);
    expect(samples.every((s) => s.container === '' && s.pod === '' && s.namespace === '')).toBe(true);
  });

  it('keeps the values, identities and labels of the sample', async () => {
    const { samples } = await collect(createReadStream(SAMPLE));
    const first = samples[0]!;
    expect(first).toMatchObject({
      hostname: 'mtv5-dgx1-hgpu-031',
      gpuId: '0',
      device: 'nvidia0',
      uuid: 'GPU-5fd4f087-86f3-7a43-b711-4771313afc50',
      metric: 'DCGM_FI_DEV_GPU_UTIL',
      value: 0,
      timestampMs: Date.UTC(2025, 6, 18, 20, 42, 34),
    });
    expect(first.labels).toEqual({
      DCGM_FI_DRIVER_VERSION: '535.129.03',
      Hostname: 'mtv5-dgx1-hgpu-031',
      UUID: 'GPU-5fd4f087-86f3-7a43-b711-4771313afc50',
      __name__: 'DCGM_FI_DEV_GPU_UTIL',
      device: 'nvidia0',
      gpu: '0',
      instance: 'mtv5-dgx1-hgpu-031:9400',
      job: 'dgx_dcgm_exporter',
      modelName: 'NVIDIA H100 80GB HBM3',
    });
    expect(samples.every((s) => s.labels.DCGM_FI_DRIVER_VERSION === '535.129.03')).toBe(true);
    expect(samples.every((s) => s.labels.__name__ === s.metric && s.labels.UUID === s.uuid)).toBe(true);
    const power = samples.filter((s) => s.metric === 'DCGM_FI_DEV_POWER_USAGE').map((s) => s.value);
    expect(Math.min(...power)).toBe(66.781);
    expect(Math.max(...power)).toBe(689.457);
  });

  it('has FB_USED + FB_FREE = 81007 MiB for every GPU at every timestamp', async () => {
    const { samples } = await collect(createReadStream(SAMPLE));
    const fb = new Map<string, number>();
    let pairs = 0;
    for (const s of samples) {
      if (s.metric !== 'DCGM_FI_DEV_FB_USED' && s.metric !== 'DCGM_FI_DEV_FB_FREE') continue;
      const key = `${s.uuid}@${s.timestampMs}`;
      const other = fb.get(key);
      if (other === undefined) fb.set(key, s.value);
      else {
        expect(other + s.value, key).toBe(81007);
        pairs++;
      }
    }
    expect(pairs).toBe(247);
  });

  it('gives the same result whatever the chunking', async () => {
    const input = readFileSync(SAMPLE);
    // Every boundary inside the header and the first three rows.
    const head = input.subarray(
      0,
      input.indexOf('\n', input.indexOf('\n', input.indexOf('\n', 1) + 1) + 1) + 1,
    );
    const headWhole = JSON.stringify(parseAt(head, []));
    expect(JSON.parse(headWhole)).toHaveLength(2);
    for (let cut = 0; cut <= head.length; cut++) expect(JSON.stringify(parseAt(head, [cut]))).toBe(headWhole);
    // Cuts spread over the whole file, three per pass.
    const whole = JSON.stringify(parseAt(input, []));
    for (let cut = 1; cut < input.length; cut += 40_009) {
      expect(JSON.stringify(parseAt(input, [cut, cut + 13, cut + 449]))).toBe(whole);
    }
    const strings = input.toString('utf8').match(/[\s\S]{1,333}/g) ?? [];
    expect((await collect(iterate(strings))).samples).toHaveLength(2470);
  });
});

describe('readDcgm on input cut short or stopped', () => {
  const input = readFileSync(SAMPLE);
  /** Start of line `n` (1-based). */
  const lineStart = (n: number): number => {
    let start = 0;
    for (let k = 1; k < n; k++) start = input.indexOf('\n', start) + 1;
    return start;
  };
  /**
   * Offset inside the labels_raw of line `n` just after the quote that closes `""535.129.03"`: the
   * CSV quotes balance there (the field reads `DCGM_FI_DRIVER_VERSION="535.129.03`).
   */
  const cutInLabels = (n: number): number => input.indexOf('535.129.03""', lineStart(n)) + 11;

  it('the sample ends with a line feed and reads without dead letters', () => {
    expect(input[input.length - 1]).toBe(10);
  });

  it('refuses a last record the input ends inside (head -c) as unterminated_record, never a sample', async () => {
    const cuts: [number, string][] = [
      [cutInLabels(101), 'unterminated_record'],
      // The whole line but its line feed: looks complete, may not be.
      [lineStart(102) - 1, 'unterminated_record'],
      // Inside a quoted field: a quote never closed.
      [cutInLabels(101) + 1, 'unterminated_quote'],
    ];
    for (const [cut, reason] of cuts) {
      const { samples, deadLetters } = await collect(iterate([input.subarray(0, cut)]));
      expect(samples.map((s) => s.line)).toEqual(Array.from({ length: 99 }, (_, i) => i + 2));
      expect(deadLetters).toHaveLength(1);
      expect(deadLetters[0]).toMatchObject({ source: 'test.csv', line: 101, reason });
      expect(deadLetters[0]!.raw).toBe(input.subarray(lineStart(101), cut).toString().slice(0, 1000));
    }
    const [balanced] = (await collect(iterate([input.subarray(0, cutInLabels(101))]))).deadLetters;
    expect(balanced!.raw.endsWith(',"DCGM_FI_DRIVER_VERSION=""535.129.03"')).toBe(true);
    expect(balanced!.detail).toMatch(/input ended in the middle of this record/);
    // Replaying the full file afterwards: the complete row is the only sample of its series at that time.
    const full = await collect(iterate([input]));
    expect(full.samples.filter((s) => s.line === 101)).toHaveLength(1);
  });

  it('drops the record being read when the signal aborted, keeping every complete row (no dead letter)', async () => {
    const cut = cutInLabels(51);
    const controller = new AbortController();
    async function* stopped(): AsyncGenerator<Buffer> {
      yield input.subarray(0, 1000);
      yield input.subarray(1000, cut);
      controller.abort(); // SIGTERM while the rest of the line is still unread
    }
    const { samples, deadLetters } = await collect(stopped(), { signal: controller.signal });
    expect(deadLetters).toEqual([]);
    expect(samples.map((s) => s.line)).toEqual(Array.from({ length: 49 }, (_, i) => i + 2));
    // The same bytes at a true end of input: the tail is reported.
    const ended = await collect(iterate([input.subarray(0, cut)]), { signal: new AbortController().signal });
    expect(ended.deadLetters.map((d) => [d.line, d.reason])).toEqual([[51, 'unterminated_record']]);
  });
});

describe('readDcgm on broken rows', () => {
  const expected: [number, string][] = [
    [3, 'column_count'],
    [5, 'non_finite_value'],
    [6, 'non_finite_value'],
    [7, 'non_numeric_value'],
    [8, 'bad_timestamp'],
    [9, 'future_timestamp'],
    [10, 'bad_utf8'],
    [11, 'oversized_field'],
    [13, 'non_finite_value'],
    [14, 'missing_field'],
    [15, 'unterminated_quote'],
    [17, 'malformed_quote'],
    [18, 'bad_gpu_id'],
    [20, 'unterminated_quote'],
  ];

  it('the fixture really holds invalid UTF-8 bytes', () => {
    const bytes = readFileSync(BROKEN);
    expect(bytes.includes(Buffer.from([0xff, 0xfe]))).toBe(true);
    expect(bytes.toString('utf8').split('\n')).toHaveLength(20);
  });

  it('yields every good row and one dead letter per bad row, with reason and line', async () => {
    const { samples, deadLetters } = await collect(createReadStream(BROKEN, { highWaterMark: 1024 }));
    expect(samples.map((s) => s.line)).toEqual([2, 4, 12, 16, 19]);
    expect(deadLetters.map((d) => [d.line, d.reason])).toEqual(expected);
    for (const d of deadLetters) {
      expect(d.source).toBe('test.csv');
      expect(d.detail.length).toBeGreaterThan(0);
      expect(d.raw.length).toBeGreaterThan(0);
      expect(d.raw.length).toBeLessThanOrEqual(1000);
    }
    expect(deadLetters.find((d) => d.reason === 'bad_utf8')!.raw).toContain('mtv5-\ufffd\ufffd-031');
    expect(deadLetters.find((d) => d.reason === 'oversized_field')!.detail).toMatch(/4096 bytes/);
  });

  it('gives the same dead letters whatever the chunking', () => {
    const input = readFileSync(BROKEN);
    const results = parseAt(input, []);
    expect(results.filter((r) => !r.ok).map((r) => !r.ok && r.deadLetter.line)).toEqual(
      expected.map(([l]) => l),
    );
    const whole = JSON.stringify(results);
    for (let cut = 0; cut <= input.length; cut++) expect(JSON.stringify(parseAt(input, [cut]))).toBe(whole);
  });

  it('honours maxFieldBytes and futureToleranceMs', async () => {
    const { deadLetters } = await collect(createReadStream(BROKEN), {
      maxFieldBytes: 8192,
      futureToleranceMs: 7 * 24 * 3600 * 1000,
    });
    const reasons = deadLetters.map((d) => d.reason);
    expect(reasons).not.toContain('oversized_field');
    expect(reasons).not.toContain('future_timestamp');
    expect(deadLetters).toHaveLength(expected.length - 2);
  });
});

describe('readDcgm headers and errors', () => {
  const row =
    '"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_TEMP","2","nvidia2","GPU-x","M","h1","","","","41.5",""\n';

  it('maps reordered and extra columns by header name', async () => {
    const text =
      'Hostname,value,extra,uuid,gpu_id,metric_name,timestamp\nh9,7.25,zzz,GPU-9,1,DCGM_FI_DEV_SM_CLOCK,2025-07-18T20:42:34Z\n';
    const { samples, deadLetters } = await collect(iterate([text]));
    expect(deadLetters).toEqual([]);
    expect(samples).toEqual([
      expect.objectContaining({
        hostname: 'h9',
        uuid: 'GPU-9',
        gpuId: '1',
        metric: 'DCGM_FI_DEV_SM_CLOCK',
        value: 7.25,
        device: '',
        labels: {},
        line: 2,
      }),
    ]);
  });

  it('fails the whole source when a required column is missing', async () => {
    const error = await collect(iterate(['timestamp,metric_name,gpu_id\n1,2,3\n'])).catch((e: unknown) => e);
    expect(hasCode(error, 'INPUT_UNREADABLE')).toBe(true);
    expect((error as Error).message).toMatch(
      /test\.csv: header is missing required column\(s\) uuid, Hostname, value/,
    );
  });

  it('reads a headerless input whose first row is bad: that row is a dead letter with its real reason', async () => {
    const bad = (from: string, to: string): string => row.replace(from, to);
    const cases: [string, string][] = [
      [bad('"41.5"', '"abc"'), 'non_numeric_value'],
      [bad('"2025-07-18T20:42:34Z"', '"yesterday"'), 'bad_timestamp'],
      [bad('"2"', '"x2"'), 'bad_gpu_id'],
      [bad('""\n', '"gpu=""2"\n'), 'bad_labels'],
      [bad('"41.5",', ''), 'column_count'],
    ];
    for (const [first, reason] of cases) {
      const { samples, deadLetters } = await collect(iterate([first + row + row]));
      expect(
        deadLetters.map((d) => [d.line, d.reason]),
        reason,
      ).toEqual([[1, reason]]);
      expect(samples.map((s) => [s.line, s.value])).toEqual([
        [2, 41.5],
        [3, 41.5],
      ]);
    }
  });

  it('refuses input that is not DCGM CSV with a clear message', async () => {
    const error = await collect(iterate(['name,size,owner\nx,1,root\n'])).catch((e: unknown) => e);
    expect(hasCode(error, 'INPUT_UNREADABLE')).toBe(true);
    expect((error as Error).message).toBe(
      'test.csv: not DCGM CSV: line 1 has 3 field(s) and is neither a header naming the columns ' +
        'timestamp, metric_name, gpu_id, uuid, Hostname, value nor a 12-field DCGM row',
    );
  });

  it('with skipUnreadable, makes a refused header one bad_header dead letter and stops reading', async () => {
    let pulled = 0;
    async function* chunks(): AsyncGenerator<string> {
      for (const c of ['timestamp,metric_name,gpu_id\n', row, row]) {
        pulled++;
        yield c;
      }
    }
    const { samples, deadLetters } = await collect(chunks(), { skipUnreadable: true });
    expect(samples).toEqual([]);
    expect(deadLetters).toEqual([
      {
        source: 'test.csv',
        line: 1,
        raw: 'timestamp,metric_name,gpu_id',
        reason: 'bad_header',
        detail: expect.stringMatching(/missing required column\(s\) uuid, Hostname, value/),
      },
    ]);
    expect(pulled).toBe(1);
  });

  it('with skipUnreadable, makes a failing stream one unreadable_source dead letter after its rows', async () => {
    async function* failing(): AsyncGenerator<string> {
      yield row + row + '"2025-07-18T20:42:34Z","half';
      throw Object.assign(new Error('EIO: i/o error'), { code: 'EIO' });
    }
    const { samples, deadLetters } = await collect(failing(), { skipUnreadable: true });
    expect(samples.map((s) => s.line)).toEqual([1, 2]);
    expect(deadLetters).toEqual([
      {
        source: 'test.csv',
        line: 3,
        raw: '',
        reason: 'unreadable_source',
        detail: 'cannot read test.csv: EIO: i/o error',
      },
    ]);
  });

  it('reads headerless standard rows and skips repeated headers', async () => {
    const header =
      'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n';
    expect((await collect(iterate([row, row]))).samples.map((s) => s.line)).toEqual([1, 2]);
    const { samples, deadLetters } = await collect(iterate([header + row + header + row]));
    expect(deadLetters).toEqual([]);
    expect(samples.map((s) => s.line)).toEqual([2, 4]);
  });

  it('restamps with the processing time when timestamps is "now"', async () => {
    const { samples } = await collect(iterate([row]), { timestamps: 'now', now: () => 1234 });
    expect(samples[0]!.timestampMs).toBe(1234);
  });

  it('turns a failing stream into INPUT_UNREADABLE', async () => {
    async function* failing(): AsyncGenerator<Buffer> {
      yield Buffer.from(
        'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n',
      );
      throw Object.assign(new Error('ENOENT: file vanished'), { code: 'ENOENT' });
    }
    const error = await collect(failing()).catch((e: unknown) => e);
    expect(hasCode(error, 'INPUT_UNREADABLE')).toBe(true);
    expect((error as Error).message).toMatch(/cannot read test\.csv: ENOENT: file vanished/);
  });

  it('releases the input when the consumer stops early', async () => {
    let closed = false;
    async function* endless(): AsyncGenerator<string> {
      try {
        for (;;) yield row;
      } finally {
        closed = true;
      }
    }
    for await (const rows of readDcgm(endless(), OPTIONS)) {
      expect(rows.length).toBeGreaterThan(0);
      break;
    }
    expect(closed).toBe(true);
  });
});
