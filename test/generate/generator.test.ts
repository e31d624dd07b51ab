// The synthetic DCGM generator: determinism, format, parseability, value shapes and invariants.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/domain/types.js';
import { hasCode } from '../../src/errors.js';
import {
  DCGM_HEADER_LINE,
  generateDcgmCsv,
  resolveGeneratorOptions,
  writeDcgmCsv,
  type GeneratorOptions,
} from '../../src/generate/generator.js';
import { SAMPLE_METRICS } from '../../src/generate/profiles.js';
import { DcgmParser } from '../../src/ingest/dcgm-reader.js';

const text = (options: GeneratorOptions): string => [...generateDcgmCsv(options)].join('');

function parse(csv: string): { samples: Sample[]; deadLetters: number } {
  const p = new DcgmParser({ source: 'gen', clusterId: 'c', now: () => Date.UTC(2030, 0, 1) });
  const results = [...p.push(csv), ...p.end()];
  return {
    samples: results.flatMap((r) => (r.ok ? [r.sample] : [])),
    deadLetters: results.filter((r) => !r.ok).length,
  };
}

function fbSums(samples: Sample[]): Set<number> {
  const byKey = new Map<string, number>();
  const sums = new Set<number>();
  for (const s of samples) {
    if (s.metric !== 'DCGM_FI_DEV_FB_USED' && s.metric !== 'DCGM_FI_DEV_FB_FREE') continue;
    const key = `${s.uuid}@${s.timestampMs}`;
    const other = byKey.get(key);
    if (other === undefined) byKey.set(key, s.value);
    else sums.add(other + s.value);
  }
  return sums;
}

describe('generateDcgmCsv', () => {
  it('is deterministic for a seed and differs between seeds', () => {
    const options = { hosts: 3, gpusPerHost: 4, durationMs: 60_000, intervalMs: 10_000 };
    const a = text({ ...options, seed: 7 });
    expect(text({ ...options, seed: 7 })).toBe(a);
    expect(text({ ...options, seed: 8 })).not.toBe(a);
    expect(text({ ...options, seed: 7, chunkRows: 5 })).toBe(a);
  });

  it('writes the sample format: header, quoting, labels_raw', () => {
    const lines = text({ hosts: 1, gpusPerHost: 1 }).split('\n');
    expect(lines[0]).toBe(DCGM_HEADER_LINE);
    expect(lines[1]).toMatch(
      /^"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_UTIL","0","nvidia0","GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}","NVIDIA H100 80GB HBM3","sim-dgx1-hgpu-001","","","","\d+","DCGM_FI_DRIVER_VERSION=""535\.129\.03"",Hostname=""sim-dgx1-hgpu-001"",UUID=""GPU-[-0-9a-f]+"",__name__=""DCGM_FI_DEV_GPU_UTIL"",device=""nvidia0"",gpu=""0"",instance=""sim-dgx1-hgpu-001:9400"",job=""dgx_dcgm_exporter"",modelName=""NVIDIA H100 80GB HBM3"""$/,
    );
    expect(lines.at(-1)).toBe('');
  });

  it('parses back with no dead letters, the planned row count and the FB invariant', () => {
    const options = { hosts: 5, gpusPerHost: 8, durationMs: 300_000, intervalMs: 30_000, seed: 3 };
    const planned = resolveGeneratorOptions(options);
    expect(planned.rows).toBe(5 * 8 * 10 * 10);
    const { samples, deadLetters } = parse(text(options));
    expect(deadLetters).toBe(0);
    expect(samples).toHaveLength(planned.rows);
    expect(new Set(samples.map((s) => s.uuid)).size).toBe(40);
    expect(new Set(samples.map((s) => s.hostname)).size).toBe(5);
    expect(new Set(samples.map((s) => s.metric))).toEqual(new Set(SAMPLE_METRICS));
    expect(new Set(samples.map((s) => s.timestampMs)).size).toBe(10);
    expect(fbSums(samples)).toEqual(new Set([81007]));
    for (const s of samples) {
      expect(s.labels.UUID).toBe(s.uuid);
      expect(s.labels.__name__).toBe(s.metric);
    }
  });

  it('shapes values like the sample', () => {
    const { samples } = parse(
      text({ hosts: 20, gpusPerHost: 8, durationMs: 600_000, intervalMs: 60_000, seed: 11 }),
    );
    const values = (metric: string): number[] =>
      samples.filter((s) => s.metric === metric).map((s) => s.value);
    const util = values('DCGM_FI_DEV_GPU_UTIL');
    expect(util.every((v) => Number.isInteger(v) && v >= 0 && v <= 100)).toBe(true);
    const idle = util.filter((v) => v === 0).length / util.length;
    expect(idle).toBeGreaterThan(0.25);
    expect(idle).toBeLessThan(0.75);
    const power = values('DCGM_FI_DEV_POWER_USAGE');
    expect(power.every((v) => v >= 60 && v <= 700 && (String(v).split('.')[1] ?? '').length <= 3)).toBe(true);
    expect(power.some((v) => !Number.isInteger(v))).toBe(true);
    const temp = values('DCGM_FI_DEV_GPU_TEMP');
    expect(temp.every((v) => Number.isInteger(v) && v >= 20 && v <= 90)).toBe(true);
    expect(new Set(values('DCGM_FI_DEV_SM_CLOCK')).has(345)).toBe(true);
    expect(new Set(values('DCGM_FI_DEV_MEM_CLOCK'))).toEqual(new Set([2619]));
    expect(new Set(values('DCGM_FI_DEV_ENC_UTIL'))).toEqual(new Set([0]));
    expect(Math.max(...values('DCGM_FI_DEV_FB_USED'))).toBeLessThanOrEqual(81007);
  });

  it('honours rows, metrics (names or count), model, prefix, header and workload attribution', () => {
    const cut = parse(text({ hosts: 2, gpusPerHost: 2, rows: 7 }));
    expect(cut.samples).toHaveLength(7);
    const many = parse(text({ hosts: 1, gpusPerHost: 1, metrics: 30 }));
    expect(many.deadLetters).toBe(0);
    const names = many.samples.map((s) => s.metric);
    expect(names).toContain('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION');
    expect(names).toContain('DCGM_FI_PROF_GR_ENGINE_ACTIVE');
    expect(names).toContain('DCGM_FI_CUSTOM_6');
    const a100 = parse(
      text({
        hosts: 2,
        gpusPerHost: 4,
        model: 'NVIDIA A100-SXM4-40GB',
        hostPrefix: 'node-',
        durationMs: 120_000,
        intervalMs: 60_000,
      }),
    );
    expect(fbSums(a100.samples)).toEqual(new Set([40537]));
    expect(a100.samples[0]!.hostname).toBe('node-001');
    const chosen = text({
      hosts: 1,
      gpusPerHost: 1,
      metrics: ['DCGM_FI_DEV_GPU_TEMP', 'MY_FIELD'],
      header: false,
    });
    expect(chosen.split('\n')[0]).toMatch(/^"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_TEMP"/);
    const pods = parse(text({ hosts: 4, gpusPerHost: 8, workloadFraction: 1 }));
    const attributed = pods.samples.filter((s) => s.pod !== '');
    expect(attributed.length).toBeGreaterThan(0);
    for (const s of attributed)
      expect(s.labels).toMatchObject({ pod: s.pod, namespace: s.namespace, container: s.container });
  });

  it('formats sub-second start times with milliseconds', () => {
    const first = text({ hosts: 1, gpusPerHost: 1, start: '2026-01-02T03:04:05.250Z', header: false }).slice(
      0,
      27,
    );
    expect(first).toBe('"2026-01-02T03:04:05.250Z",');
  });

  it('refuses bad options with a message naming the option', () => {
    for (const [options, pattern] of [
      [{ hosts: 0 }, /hosts must be a positive integer/],
      [{ gpusPerHost: 1.5 }, /gpusPerHost/],
      [{ metrics: [] }, /metrics must not be empty/],
      [{ intervalMs: 0 }, /intervalMs/],
      [{ rows: -1 }, /rows/],
      [{ start: 'not a date' }, /start/],
      [{ workloadFraction: 2 }, /workloadFraction/],
    ] as [GeneratorOptions, RegExp][]) {
      let error: unknown;
      try {
        resolveGeneratorOptions(options);
      } catch (e) {
        error = e;
      }
      expect(hasCode(error, 'BAD_REQUEST'), String(pattern)).toBe(true);
      expect((error as Error).message).toMatch(pattern);
    }
  });
});

describe('writeDcgmCsv', () => {
  it('writes the generated text to a file and reports rows and bytes', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nexus-gen-'));
    try {
      const path = join(dir, 'out.csv');
      const options = { hosts: 3, gpusPerHost: 8, rows: 5000, seed: 5 };
      const result = await writeDcgmCsv(path, options);
      const written = await readFile(path, 'utf8');
      expect(result).toEqual({ rows: 5000, bytes: Buffer.byteLength(written) });
      expect(written).toBe(text(options));
      expect(parse(written).samples).toHaveLength(5000);
      await expect(writeDcgmCsv(path, { durationMs: Infinity })).rejects.toThrow(/finite/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
