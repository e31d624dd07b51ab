/**
 * The foundation's promise, end to end in one process: the bundled sample goes through streamer,
 * embedded queue, collector, PGlite and the live hierarchy, and the REST API answers with the CSV's
 * exact values. A restart on the same data directory re-ingests without duplicating a sample.
 * Run once per embedded sample store (`EMBEDDED_STORE`: PGlite, SQLite).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { readSampleRows } from '../support/sample-csv.js';

interface TelemetryItem {
  timestamp: string;
  metric_name: string;
  value: number;
  uuid: string;
  hostname: string;
  gpu_id: string;
}

const logger = createLogger('silent');

describe.each(['pglite', 'sqlite'] as const)('embedded pipeline on the bundled sample (%s)', (store) => {
  const dataDir = mkdtempSync(join(tmpdir(), 'nexus-e2e-'));
  const config = loadConfig(
    {},
    { DATA_DIR: dataDir, CLUSTER_ID: 'dgx-lab', LOG_LEVEL: 'silent', EMBEDDED_STORE: store },
  );
  let runtime: EmbeddedRuntime;

  async function get<T>(url: string): Promise<{ status: number; body: T }> {
    const response = await runtime.app.inject({ method: 'GET', url });
    return { status: response.statusCode, body: response.json() as T };
  }

  beforeAll(async () => {
    runtime = await startEmbedded({ config, logger, listen: false });
    expect(runtime.topology.samples).toBe(store);
    const summary = await runtime.ingest({ spec: bundledSamplePath() });
    expect(summary).toMatchObject({ rows: 2470, badRows: 0 });
  });

  afterAll(async () => {
    await runtime?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('reports 31 hosts and 247 GPUs, all active, in the guide shape', async () => {
    const { status, body } = await get<Record<string, unknown>>('/api/v1/clusters/dgx-lab');
    expect(status).toBe(200);
    expect(body).toEqual({
      cluster_id: 'dgx-lab',
      cluster_name: 'dgx-lab cluster',
      region: 'local',
      metadata: { total_hosts: 31, total_gpus: 247, active_hosts: 31, active_gpus: 247 },
    });
    expect(await runtime.store.countSamples()).toBe(2470);
  });

  it('lists 7 GPUs on mtv5-dgx1-hgpu-012 (no gpu 6)', async () => {
    const { body } = await get<{ gpu_id: string }[]>(
      '/api/v1/clusters/dgx-lab/hosts/mtv5-dgx1-hgpu-012/gpus',
    );
    expect(body.map((g) => g.gpu_id).sort()).toEqual(['0', '1', '2', '3', '4', '5', '7']);
  });

  it("returns every GPU's 10 metrics with the CSV's exact values", async () => {
    const rows = readSampleRows();
    const byUuid = new Map<string, typeof rows>();
    for (const row of rows) byUuid.set(row.uuid, [...(byUuid.get(row.uuid) ?? []), row]);
    expect(byUuid.size).toBe(247);

    for (const [uuid, expected] of byUuid) {
      const { hostname, gpuId } = expected[0]!;
      const { status, body } = await get<TelemetryItem[]>(
        `/api/v1/clusters/dgx-lab/hosts/${hostname}/gpus/${gpuId}/telemetry?limit=1000`,
      );
      expect(status).toBe(200);
      expect(new Set(body.map((i) => i.metric_name)).size).toBe(10);
      const actual = body
        .map((i) => `${i.timestamp.replace('.000Z', 'Z')} ${i.metric_name} ${i.value}`)
        .sort();
      const wanted = expected.map((r) => `${r.timestamp} ${r.metric} ${r.value}`).sort();
      expect(actual, uuid).toEqual(wanted);
      expect(body.every((i) => i.uuid === uuid && i.hostname === hostname)).toBe(true);

      const fb = new Map<string, number>();
      for (const i of body) {
        if (i.metric_name === 'DCGM_FI_DEV_FB_USED' || i.metric_name === 'DCGM_FI_DEV_FB_FREE')
          fb.set(i.timestamp, (fb.get(i.timestamp) ?? 0) + i.value);
      }
      expect(fb.size).toBeGreaterThan(0);
      for (const sum of fb.values()) expect(sum).toBe(81007);
    }
  });

  it('keeps the latest value of each metric in the live hierarchy', async () => {
    const { body } = await get<{ metrics: Record<string, { value: number }> }>(
      '/api/v1/clusters/dgx-lab/hosts/mtv5-dgx1-hgpu-031/gpus/0',
    );
    expect(Object.keys(body.metrics)).toHaveLength(10);
    const fbUsed = body.metrics.DCGM_FI_DEV_FB_USED!.value;
    const fbFree = body.metrics.DCGM_FI_DEV_FB_FREE!.value;
    expect(fbUsed + fbFree).toBe(81007);
  });

  it('re-ingests after a restart on the same data directory without duplicating a sample', async () => {
    await runtime.close();
    runtime = await startEmbedded({ config, logger, listen: false });
    expect(await runtime.store.countSamples()).toBe(2470);
    // The hierarchy is rebuilt from the store before any new ingest.
    const restored = await get<{ metadata: { total_hosts: number; total_gpus: number } }>(
      '/api/v1/clusters/dgx-lab',
    );
    expect(restored.body.metadata).toMatchObject({ total_hosts: 31, total_gpus: 247 });
    const summary = await runtime.ingest({ spec: bundledSamplePath() });
    expect(summary.rows).toBe(2470);
    expect(await runtime.store.countSamples()).toBe(2470);
    expect(runtime.collector.stats.samplesWritten).toBe(0);
    expect(runtime.collector.stats.duplicates).toBe(runtime.collector.stats.batches);
    const { body } = await get<{ metadata: { total_gpus: number } }>('/api/v1/clusters/dgx-lab');
    expect(body.metadata.total_gpus).toBe(247);
  });
});
