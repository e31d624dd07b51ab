/**
 * Bad input end to end: a CSV with every kind of broken row goes through the embedded pipeline;
 * every good row is stored and every bad one is listed at /api/v1/dead-letters with its line and reason.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

const HEADER =
  'timestamp,metric_name,gpu_id,device,uuid,modelName,Hostname,container,pod,namespace,value,labels_raw';
const row = (gpu: number, value: string, timestamp = '2025-07-18T20:42:34Z'): string =>
  `"${timestamp}","DCGM_FI_DEV_GPU_UTIL","${gpu}","nvidia${gpu}","GPU-${gpu}","NVIDIA H100 80GB HBM3","host-x","","","","${value}","gpu=""${gpu}"""`;

const dir = mkdtempSync(join(tmpdir(), 'nexus-broken-'));
const file = join(dir, 'broken.csv');
let runtime: EmbeddedRuntime;

// line numbers: header is line 1
const lines: (string | Buffer)[] = [
  HEADER,
  row(0, '10'), // 2 good
  '"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_UTIL","1"', // 3 column_count
  row(2, 'NaN'), // 4 non_finite_value
  row(3, 'Infinity'), // 5 non_finite_value
  row(4, 'abc'), // 6 non_numeric_value
  row(5, '20', 'yesterday'), // 7 bad_timestamp
  row(6, '30').replace('"host-x"', `"${'h'.repeat(10_000)}"`), // 8 oversized_field
  Buffer.concat([
    Buffer.from(row(7, '40').slice(0, 60)),
    Buffer.from([0xff, 0xfe]),
    Buffer.from(row(7, '40').slice(60)),
  ]), // 9 bad_utf8
  row(8, '50'), // 10 good
  '"2025-07-18T20:42:34Z","DCGM_FI_DEV_GPU_UTIL","9","nvidia9","GPU-9","NVIDIA H100 80GB HBM3","host-x","","","","60","gpu=9', // 11 unterminated_quote
  row(10, '70'), // 12 good
  row(11, '80'), // 13 good
];

beforeAll(async () => {
  const parts = lines.map((l) => (typeof l === 'string' ? Buffer.from(l) : l));
  writeFileSync(file, Buffer.concat(parts.flatMap((p) => [p, Buffer.from('\n')])));
  const config = loadConfig({}, { MEMORY: true, CLUSTER_ID: 'c', LOG_LEVEL: 'silent' });
  runtime = await startEmbedded({ config, logger: createLogger('silent'), listen: false });
});

afterAll(async () => {
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('broken rows', () => {
  it('stores every good row and lists each bad one with its line and reason', async () => {
    const summary = await runtime.ingest({ spec: file });
    expect(summary.badRows).toBe(8);
    expect(await runtime.store.countSamples()).toBe(4);

    const response = await runtime.app.inject({ method: 'GET', url: '/api/v1/dead-letters?limit=100' });
    expect(response.statusCode).toBe(200);
    const listed = (response.json() as { line: number; reason: string; source: string; raw: string }[])
      .map((d) => [d.line, d.reason] as const)
      .sort((a, b) => a[0] - b[0]);
    expect(listed).toEqual([
      [3, 'column_count'],
      [4, 'non_finite_value'],
      [5, 'non_finite_value'],
      [6, 'non_numeric_value'],
      [7, 'bad_timestamp'],
      [8, 'oversized_field'],
      [9, 'bad_utf8'],
      [11, 'unterminated_quote'],
    ]);

    const gpus = await runtime.app.inject({ method: 'GET', url: '/api/v1/clusters/c/hosts/host-x/gpus' });
    expect((gpus.json() as { gpu_id: string }[]).map((g) => g.gpu_id).sort()).toEqual(['0', '10', '11', '8']);
  });
});
