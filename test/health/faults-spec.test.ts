// The fault spec (`--faults` text and FaultSpec objects) and what the generator writes with faults:
// rows left out for a gone GPU, XIDs only inside windows, counters that only grow by injected
// counts, the fields faults need added to the metrics, the `generate --faults` command line.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { NexusError } from '../../src/errors.js';
import { parseFaults, type FaultSpec } from '../../src/generate/faults.js';
import { generateDcgmCsv, resolveGeneratorOptions } from '../../src/generate/generator.js';

/** Rows of generated CSV as [offset s, metric, host, gpu, value]. */
function rows(text: string, startMs: number): [number, string, string, string, number][] {
  return text
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => {
      const f = l.split('","');
      return [(Date.parse(f[0]!.slice(1)) - startMs) / 1000, f[1]!, f[6]!, f[2]!, Number(f[10])];
    });
}

const START = Date.UTC(2026, 0, 1);

describe('parseFaults', () => {
  it('reads kinds, hosts, GPUs, windows and parameters', () => {
    expect(
      parseFaults(
        'xid:host002/gpu3@10m-20m:code=79; gone:sim-dgx1-hgpu-001/0@90s- ;thermal-throttle:*/*@0-1h:bits=0x40',
      ),
    ).toEqual<FaultSpec[]>([
      { kind: 'xid', host: 'host002', gpu: 3, fromMs: 600_000, toMs: 1_200_000, params: { code: 79 } },
      { kind: 'gone', host: 'sim-dgx1-hgpu-001', gpu: 0, fromMs: 90_000, toMs: Infinity },
      { kind: 'thermal-throttle', host: '*', gpu: '*', fromMs: 0, toMs: 3_600_000, params: { bits: 0x40 } },
    ]);
    expect(parseFaults(' ; ')).toEqual([]);
  });

  it('refuses what it cannot read, naming the item and the problem', () => {
    const bad: [string, RegExp][] = [
      ['xid host002/gpu3@1m-2m', /is not <kind>:<host>\/<gpu>@<from>-<to>/],
      ['melt:2/1@1m-2m', /unknown kind 'melt'/],
      ['xid:2/x@1m-2m', /GPU 'x'/],
      ['xid:2/1@soon-2m', /'soon' .* is not a duration/],
      ['xid:2/1@2m-1m', /must have 0 <= from < to/],
      ['xid:2/1@1m-2m:code', /parameter 'code' .* is not key=number/],
    ];
    for (const [text, message] of bad) {
      let error: unknown;
      try {
        parseFaults(text);
      } catch (e) {
        error = e;
      }
      expect(error, text).toBeInstanceOf(NexusError);
      expect((error as NexusError).code, text).toBe('BAD_REQUEST');
      expect((error as NexusError).message, text).toMatch(message);
    }
  });
});

describe('the generator with faults', () => {
  const base = { hosts: 2, gpusPerHost: 2, start: START, intervalMs: 10_000, durationMs: 60_000 };

  it('adds the fields the faults need to the metrics, once each', () => {
    const o = resolveGeneratorOptions({
      ...base,
      metrics: ['DCGM_FI_DEV_GPU_TEMP'],
      faults: parseFaults('overheat:1/0@0-10s;xid:1/0@0-10s;xid:2/1@0-10s;nvlink-error:1/1@0-1m'),
    });
    expect(o.metrics).toEqual([
      'DCGM_FI_DEV_GPU_TEMP',
      'DCGM_FI_DEV_XID_ERRORS',
      'DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL',
    ]);
  });

  it('writes no rows for a gone GPU inside its window, and every row outside it', () => {
    const text = [...generateDcgmCsv({ ...base, faults: parseFaults('gone:2/1@20s-40s') })].join('');
    const all = rows(text, START);
    const gone = all.filter((r) => r[2] === 'sim-dgx1-hgpu-002' && r[3] === '1');
    expect([...new Set(gone.map((r) => r[0]))]).toEqual([0, 10, 40, 50]);
    // 6 scrapes x 4 GPUs x 10 metrics, less 2 scrapes x 10 metrics of the gone GPU.
    expect(all).toHaveLength(6 * 4 * 10 - 2 * 10);
  });

  it('reports an XID only inside its window and only on its GPU; spontaneous XIDs are off', () => {
    const text = [
      ...generateDcgmCsv({ ...base, durationMs: 600_000, faults: parseFaults('xid:1/1@30s-50s:code=94') }),
    ].join('');
    const xids = rows(text, START).filter((r) => r[1] === 'DCGM_FI_DEV_XID_ERRORS');
    expect(xids).toHaveLength(60 * 4);
    expect(xids.filter((r) => r[4] !== 0)).toEqual([
      [30, 'DCGM_FI_DEV_XID_ERRORS', 'sim-dgx1-hgpu-001', '1', 94],
      [40, 'DCGM_FI_DEV_XID_ERRORS', 'sim-dgx1-hgpu-001', '1', 94],
    ]);
  });

  it('grows a counter by the injected count per scrape inside the window and keeps it after', () => {
    const text = [...generateDcgmCsv({ ...base, faults: parseFaults('ecc-dbe:2/0@10s-30s:count=3') })].join(
      '',
    );
    const ecc = rows(text, START).filter(
      (r) => r[1] === 'DCGM_FI_DEV_ECC_DBE_VOL_TOTAL' && r[2] === 'sim-dgx1-hgpu-002',
    );
    expect(ecc.filter((r) => r[3] === '0').map((r) => [r[0], r[4]])).toEqual([
      [0, 0],
      [10, 3],
      [20, 6],
      [30, 6],
      [40, 6],
      [50, 6],
    ]);
    expect(ecc.filter((r) => r[3] === '1').every((r) => r[4] === 0)).toBe(true);
  });

  it('sets throttle bits and temperatures inside the window, and leaves the rest as generated', () => {
    const plain = rows([...generateDcgmCsv({ ...base, metrics: ['DCGM_FI_DEV_GPU_TEMP'] })].join(''), START);
    const hot = rows(
      [
        ...generateDcgmCsv({
          ...base,
          metrics: ['DCGM_FI_DEV_GPU_TEMP'],
          faults: parseFaults('overheat:1/0@10s-20s:temp=97'),
        }),
      ].join(''),
      START,
    );
    expect(hot.filter((r, i) => r[4] !== plain[i]![4])).toEqual([
      [10, 'DCGM_FI_DEV_GPU_TEMP', 'sim-dgx1-hgpu-001', '0', 97],
    ]);
    const throttled = rows(
      [...generateDcgmCsv({ ...base, faults: parseFaults('power-throttle:*/1@0-20s:bits=0x80') })].join(''),
      START,
    )
      .filter((r) => r[1] === 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS' && (r[4] & 0x80) !== 0)
      .map((r) => `${r[0]} ${r[2]}/${r[3]}`);
    expect(throttled).toEqual([
      '0 sim-dgx1-hgpu-001/1',
      '0 sim-dgx1-hgpu-002/1',
      '10 sim-dgx1-hgpu-001/1',
      '10 sim-dgx1-hgpu-002/1',
    ]);
  });

  it('is deterministic: the same options and faults give the same bytes', () => {
    const options = { ...base, faults: parseFaults('xid:1/0@10s-20s;gone:2/1@0-30s;pcie-replay:*/*@0-1m') };
    expect([...generateDcgmCsv(options)].join('')).toBe([...generateDcgmCsv(options)].join(''));
  });
});

describe('nexus-telemetry generate --faults', () => {
  it('writes the faults into the file and counts the rows it wrote', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'faults-cli-'));
    try {
      const out = join(dir, 'f.csv');
      const { stdout } = await promisify(execFile)(
        process.execPath,
        [
          '--import',
          'tsx',
          'src/cli/main.ts',
          'generate',
          '-o',
          out,
          '--hosts',
          '1',
          '--gpus-per-host',
          '2',
          '--duration',
          '30s',
          '--start',
          '2026-01-01T00:00:00Z',
          '--faults',
          'gone:1/1@10s-20s;xid:1/0@0-10s:code=79',
        ],
        { timeout: 60_000 },
      );
      const written = rows(readFileSync(out, 'utf8'), START);
      // 3 scrapes x 2 GPUs x 11 metrics (the sample's ten and the XID field), less one scrape of GPU 1.
      expect(written).toHaveLength(3 * 2 * 11 - 11);
      expect(stdout).toMatch(/^wrote 55 rows/);
      expect(
        written.filter((r) => r[1] === 'DCGM_FI_DEV_XID_ERRORS' && r[4] === 79).map((r) => [r[0], r[3]]),
      ).toEqual([[0, '0']]);
      await expect(
        promisify(execFile)(
          process.execPath,
          ['--import', 'tsx', 'src/cli/main.ts', 'generate', '-o', out, '--faults', 'melt:1/1@0-1m'],
          { timeout: 60_000 },
        ),
      ).rejects.toMatchObject({ stderr: expect.stringMatching(/unknown kind 'melt'/) });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
