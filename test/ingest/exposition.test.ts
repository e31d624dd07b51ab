import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/domain/types.js';
import {
  EXPOSITION_DEAD_LETTER_REASONS,
  ExpositionParser,
  looksLikeExposition,
  readExposition,
  type ExpositionOptions,
  type ExpositionSummary,
} from '../../src/ingest/exposition.js';
import { DEAD_LETTER_REASONS, type RowResult } from '../../src/ingest/validate.js';
import { renderCsv, SAMPLE_CSV, SAMPLE_PROM, samplesOfCsv } from '../fixtures/dcgm-exporter/render.js';

const NOW = Date.UTC(2025, 6, 18, 21, 0, 0);
const base: ExpositionOptions = { source: 't', clusterId: 'c1', scrapeStartMs: NOW, now: () => NOW };

function parse(text: string | Buffer, options: Partial<ExpositionOptions> = {}): RowResult[] {
  const p = new ExpositionParser({ ...base, ...options });
  return [...p.push(text), ...p.end()];
}
const samples = (rows: RowResult[]): Sample[] => rows.flatMap((r) => (r.ok ? [r.sample] : []));
const dead = (rows: RowResult[]) => rows.flatMap((r) => (r.ok ? [] : [r.deadLetter]));

const LINE =
  'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-1",device="nvidia0",modelName="H100",Hostname="h1",DCGM_FI_DRIVER_VERSION="535"} 42';

describe('exposition parser', () => {
  it('maps dcgm-exporter labels onto a sample, all labels kept', () => {
    const [s] = samples(
      parse(
        `# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).\n# TYPE DCGM_FI_DEV_GPU_UTIL gauge\n${LINE}\n`,
      ),
    );
    expect(s).toEqual({
      clusterId: 'c1',
      hostname: 'h1',
      gpuId: '0',
      uuid: 'GPU-1',
      device: 'nvidia0',
      modelName: 'H100',
      metric: 'DCGM_FI_DEV_GPU_UTIL',
      container: '',
      pod: '',
      namespace: '',
      labels: {
        gpu: '0',
        UUID: 'GPU-1',
        device: 'nvidia0',
        modelName: 'H100',
        Hostname: 'h1',
        DCGM_FI_DRIVER_VERSION: '535',
        __name__: 'DCGM_FI_DEV_GPU_UTIL',
      },
      timestampMs: NOW,
      value: 42,
    });
  });

  it('keeps HELP and TYPE per family, resolves OpenMetrics suffixes', () => {
    const p = new ExpositionParser({ ...base, format: 'openmetrics' });
    p.push('# HELP DCGM_X a \\\\ b\\nc\n# TYPE DCGM_X counter\n# UNIT DCGM_X joules\n# EOF\n');
    expect(p.end()).toEqual([]);
    expect(p.families.get('DCGM_X')).toEqual({
      name: 'DCGM_X',
      help: 'a \\ b\nc',
      type: 'counter',
      unit: 'joules',
    });
    expect(p.typeOf('DCGM_X_total')).toBe('counter');
    expect(p.typeOf('nope')).toBeUndefined();
  });

  it('workload labels, lowercase hostname/uuid, default host, extra labels', () => {
    const [a, b] = samples(
      parse(
        'DCGM_A{gpu="1",uuid="U",hostname="hx",container="c",namespace="ns",pod="p"} 1\nDCGM_A{gpu="2",UUID="V",job="mine"} 2\n',
        { defaultHostname: 'target', extraLabels: { job: 'dcgm', instance: 'target:9400' } },
      ),
    );
    expect([a!.hostname, a!.uuid, a!.container, a!.pod, a!.namespace]).toEqual(['hx', 'U', 'c', 'p', 'ns']);
    expect([b!.hostname, b!.labels.job, b!.labels.instance]).toEqual(['target', 'mine', 'target:9400']);
  });

  it('unescapes label values', () => {
    const [s] = samples(parse('DCGM_A{gpu="0",UUID="u",Hostname="h",pod="a\\\\b\\"c\\nd"} 1\n'));
    expect(s!.pod).toBe('a\\b"c\nd');
  });

  it('timestamps: ms in text, seconds in OpenMetrics, scrape start when absent', () => {
    const t = parse(`${LINE} 1752871354123\n${LINE}\n`);
    expect(samples(t).map((s) => s.timestampMs)).toEqual([1752871354123, NOW]);
    const om = parse(`${LINE} 1752871354.123\n${LINE} 1752871354.5 # {trace_id="x"} 1\n# EOF\n`, {
      format: 'openmetrics',
    });
    expect(samples(om).map((s) => s.timestampMs)).toEqual([1752871354123, 1752871354500]);
    expect(dead(parse(`${LINE} 1.5\n`))[0]!.reason).toBe('bad_exposition_line');
  });

  it('non-finite and non-numeric values are dead letters', () => {
    const rows = parse(
      `${LINE.replace(' 42', ' NaN')}\n${LINE.replace(' 42', ' +Inf')}\n${LINE.replace(' 42', ' -Inf')}\n${LINE.replace(' 42', ' 0x1F')}\n${LINE.replace(' 42', ' 1e3')}\n`,
    );
    expect(dead(rows).map((d) => [d.line, d.reason])).toEqual([
      [1, 'non_finite_value'],
      [2, 'non_finite_value'],
      [3, 'non_finite_value'],
      [4, 'non_numeric_value'],
    ]);
    expect(samples(rows).map((s) => s.value)).toEqual([1000]);
  });

  it('malformed lines are dead letters naming the line; the rest is kept', () => {
    const text = [
      LINE,
      'DCGM_A{gpu="0",UUID="u",Hostname="h" 1',
      'DCGM_A{gpu="0",UUID="u",Hostname="h",gpu="1"} 1',
      'DCGM_A{gpu="0",UUID="u\\x",Hostname="h"} 1',
      'DCGM_A{gpu="0",UUID="u",Hostname="h"}',
      'DCGM_A{gpu="0",UUID="u",Hostname="h"} 1 2 3',
      '# TYPE DCGM_A bogus',
      '9bad 1',
      LINE,
    ].join('\n');
    const rows = parse(`${text}\n`);
    expect(samples(rows)).toHaveLength(2);
    const d = dead(rows);
    expect(d.map((x) => x.line)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(new Set(d.map((x) => x.reason))).toEqual(new Set(['bad_exposition_line']));
    expect(d[1]!.detail).toBe('line 3: label "gpu" appears twice');
  });

  it('missing identity, bad gpu, too long identity, out of range and future times', () => {
    const long = 'x'.repeat(513);
    const rows = parse(
      [
        'DCGM_A{gpu="0",UUID="u"} 1',
        'DCGM_A{UUID="u",Hostname="h"} 1',
        'DCGM_A{gpu="a",UUID="u",Hostname="h"} 1',
        `DCGM_A{gpu="0",UUID="u",Hostname="h",pod="${long}"} 1`,
        'DCGM_A{gpu="0",UUID="u",Hostname="h"} 1 253402300800000',
        `DCGM_A{gpu="0",UUID="u",Hostname="h"} 1 ${NOW + 2 * 86_400_000}`,
      ].join('\n') + '\n',
    );
    expect(dead(rows).map((d) => d.reason)).toEqual([
      'missing_field',
      'missing_field',
      'bad_gpu_id',
      'identity_field_too_long',
      'timestamp_out_of_range',
      'future_timestamp',
    ]);
  });

  it('skips and counts non-DCGM series and OpenMetrics _created', () => {
    const p = new ExpositionParser({ ...base, format: 'openmetrics' });
    const rows = [
      ...p.push(`go_goroutines 12\n# TYPE DCGM_C counter\nDCGM_C_total{gpu="0",UUID="u",Hostname="h"} 5\n`),
      ...p.push('DCGM_C_created{gpu="0",UUID="u",Hostname="h"} 1700000000\nprocess_cpu{a="b"} 1\n# EOF\n'),
      ...p.end(),
    ];
    expect(samples(rows).map((s) => s.metric)).toEqual(['DCGM_C_total']);
    expect(dead(rows)).toEqual([]);
    expect(p.skipped).toBe(3);
  });

  it('OpenMetrics: lines after # EOF and a missing # EOF are dead letters', () => {
    expect(
      dead(parse(`${LINE}\n# EOF\n${LINE}\n`, { format: 'openmetrics' })).map((d) => [d.line, d.reason]),
    ).toEqual([[3, 'bad_exposition_line']]);
    expect(dead(parse(`${LINE}\n`, { format: 'openmetrics' })).map((d) => [d.line, d.reason])).toEqual([
      [2, 'missing_eof'],
    ]);
  });

  it('bad UTF-8, oversized and unterminated lines', () => {
    const bad = Buffer.concat([
      Buffer.from(`${LINE}\nDCGM_A{gpu="0",UUID="`),
      Buffer.from([0xff, 0xfe]),
      Buffer.from(`",Hostname="h"} 1\n${LINE}`),
    ]);
    expect(dead(parse(bad)).map((d) => [d.line, d.reason])).toEqual([
      [2, 'bad_utf8'],
      [3, 'unterminated_record'],
    ]);
    const rows = parse(`${LINE}\n${'DCGM_A{x="' + 'y'.repeat(200)}"} 1\n${LINE}\n`, { maxLineBytes: 150 });
    expect(dead(rows).map((d) => [d.line, d.reason])).toEqual([[2, 'oversized_line']]);
    expect(samples(rows)).toHaveLength(2);
  });

  it('an aborted stream drops the incomplete line silently', async () => {
    const ac = new AbortController();
    async function* chunks() {
      yield Buffer.from(`${LINE}\n${LINE.slice(0, 30)}`);
      ac.abort();
    }
    let summary: ExpositionSummary | undefined;
    const out: RowResult[] = [];
    for await (const b of readExposition(chunks(), {
      ...base,
      signal: ac.signal,
      onEnd: (s) => (summary = s),
    }))
      out.push(...b);
    expect(out.map((r) => r.ok)).toEqual([true]);
    expect(summary!.samples).toBe(1);
  });

  it('reason codes are new and documented', () => {
    for (const [k, v] of Object.entries(EXPOSITION_DEAD_LETTER_REASONS)) {
      expect(k in DEAD_LETTER_REASONS).toBe(false);
      expect(v.length).toBeGreaterThan(10);
    }
  });

  it('looksLikeExposition', () => {
    const yes = ['# HELP DCGM_A x\n', '# TYPE DCGM_A gauge', `${LINE}\n`, 'up 1\n', '\n\nDCGM_A{gpu="0"'];
    const no = [
      'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw\n',
      '"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_UTIL","0"',
      '2025-07-18T20:42:34Z,DCGM_FI_DEV_GPU_UTIL,0\n',
      '',
    ];
    expect(yes.map((s) => looksLikeExposition(Buffer.from(s)))).toEqual(yes.map(() => true));
    expect(no.map((s) => looksLikeExposition(Buffer.from(s)))).toEqual(no.map(() => false));
    expect(looksLikeExposition(readFileSync(SAMPLE_PROM))).toBe(true);
    expect(looksLikeExposition(readFileSync(SAMPLE_CSV))).toBe(false);
  });
});

describe('the bundled sample as dcgm-exporter output', () => {
  const csv = readFileSync(SAMPLE_CSV);
  const fromCsv = samplesOfCsv(csv);

  it('the committed fixture is what render.ts writes', () => {
    expect(readFileSync(SAMPLE_PROM, 'utf8')).toBe(renderCsv(csv));
  });

  it('gives the 2,470 CSV samples, no dead letter', async () => {
    async function* chunks() {
      const b = readFileSync(SAMPLE_PROM);
      for (let k = 0; k < b.length; k += 4096) yield b.subarray(k, k + 4096);
    }
    let summary: ExpositionSummary | undefined;
    const rows: RowResult[] = [];
    for await (const b of readExposition(chunks(), { ...base, onEnd: (s) => (summary = s) })) rows.push(...b);
    expect(dead(rows)).toEqual([]);
    const key = (s: Sample) => [s.hostname, s.gpuId, s.uuid, s.metric, s.value].join('|');
    expect(samples(rows).map(key).sort()).toEqual(fromCsv.map(key).sort());
    expect(samples(rows)).toHaveLength(2470);
    expect(new Set(samples(rows).map((s) => s.hostname)).size).toBe(31);
    expect(summary).toMatchObject({ samples: 2470, deadLetters: 0, skipped: 0, comments: 20, lines: 2490 });
    expect(summary!.families.get('DCGM_FI_DEV_POWER_USAGE')).toEqual({
      name: 'DCGM_FI_DEV_POWER_USAGE',
      type: 'gauge',
      help: 'Power draw (in W).',
    });
  });

  it('every CSV row and its exposition line give deep-equal samples', () => {
    // With Prometheus' target labels (instance, job) as labels_raw has them, and the CSV's times.
    const text = renderCsv(csv, { scrapeLabels: true, timestamps: true });
    const rows = parse(text, { clusterId: 'render', now: () => Date.UTC(2030, 0, 1) });
    expect(dead(rows)).toEqual([]);
    const byKey = (s: Sample) => `${s.uuid}|${s.metric}|${s.timestampMs}`;
    const got = new Map(samples(rows).map((s) => [byKey(s), s]));
    expect(got.size).toBe(2470);
    for (const s of fromCsv) expect(got.get(byKey(s))).toEqual(s);
    // Without written times every sample takes the scrape start; the rest is still equal.
    const plain = samples(parse(renderCsv(csv, { scrapeLabels: true }), { clusterId: 'render' }));
    const series = (s: Sample) => `${s.uuid}|${s.metric}`;
    const plainBySeries = new Map(plain.map((s) => [series(s), s]));
    expect(plainBySeries.size).toBe(2470);
    for (const s of fromCsv) expect(plainBySeries.get(series(s))).toEqual({ ...s, timestampMs: NOW });
    expect(new Set(plain.map((s) => s.timestampMs))).toEqual(new Set([NOW]));
  });
});
