/**
 * `start` on PostgreSQL: with DATABASE_URL set, the embedded runtime keeps its queue and live state in
 * process but writes samples to PostgreSQL (a real server from the harness) instead of PGlite, and
 * takes no data-directory lock. The bundled sample goes through it as in PGlite mode.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../src/config/config.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { ALL_RAW_SAMPLES } from '../../src/storage/chunks.js';

const logger = createLogger('silent');
const scratch = mkdtempSync(join(tmpdir(), 'nexus-start-pg-'));
/** A DATA_DIR that must stay untouched: PostgreSQL needs no PGlite directory and no lock. */
const dataDir = join(scratch, 'data');
let postgres: PostgresHarness;
let databaseUrl: string;
let config: Config;
const runtimes: EmbeddedRuntime[] = [];

async function getJson<T>(runtime: EmbeddedRuntime, url: string): Promise<{ status: number; body: T }> {
  const response = await runtime.app.inject({ method: 'GET', url });
  return { status: response.statusCode, body: response.json() as T };
}

beforeAll(async () => {
  postgres = await startPostgres();
  databaseUrl = await postgres.createDatabase('start_on_postgres');
  config = loadConfig(
    {},
    { CLUSTER_ID: 'dgx-lab', DATABASE_URL: databaseUrl, DATA_DIR: dataDir, LOG_LEVEL: 'silent' },
  );
});

afterAll(async () => {
  for (const runtime of runtimes) await runtime.close();
  await postgres?.stop();
  rmSync(scratch, { recursive: true, force: true });
});

describe('start (embedded runtime) on PostgreSQL', () => {
  it('ingests the bundled sample into PostgreSQL: 2,470 samples, 31 hosts, 247 GPUs', async () => {
    const runtime = await startEmbedded({ config, logger, listen: false });
    runtimes.push(runtime);
    expect(runtime.topology).toMatchObject({
      mode: 'embedded',
      produce: 'embedded',
      coordination: 'embedded',
      samples: 'postgres',
    });

    const summary = await runtime.ingest({ spec: bundledSamplePath() });
    expect(summary).toMatchObject({ rows: 2470, badRows: 0, refusedByStore: 0 });
    expect(await runtime.store.countSamples()).toBe(2470);

    const cluster = await getJson<Record<string, unknown>>(runtime, '/api/v1/clusters/dgx-lab');
    expect(cluster.status).toBe(200);
    expect(cluster.body).toEqual({
      cluster_id: 'dgx-lab',
      cluster_name: 'dgx-lab cluster',
      region: 'local',
      metadata: { total_hosts: 31, total_gpus: 247, active_hosts: 31, active_gpus: 247 },
    });
    const gpus = await getJson<{ gpu_id: string }[]>(
      runtime,
      '/api/v1/clusters/dgx-lab/hosts/mtv5-dgx1-hgpu-012/gpus',
    );
    expect(gpus.body.map((g) => g.gpu_id).sort()).toEqual(['0', '1', '2', '3', '4', '5', '7']);
    const ready = await getJson<{ status: string }>(runtime, '/ready');
    expect(ready.status).toBe(200);

    // The rows are in PostgreSQL itself, and nothing was written under DATA_DIR (no PGlite, no lock).
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    try {
      const { rows } = await client.query<{ n: string }>(`SELECT count(*) AS n FROM ${ALL_RAW_SAMPLES} AS a`);
      expect(Number(rows[0]!.n)).toBe(2470);
    } finally {
      await client.end();
    }
    expect(existsSync(dataDir)).toBe(false);
  });

  it('a second runtime on the same database starts (no lock) and restores the hierarchy from it', async () => {
    const second = await startEmbedded({ config, logger, listen: false });
    runtimes.push(second);
    expect(await second.store.countSamples()).toBe(2470);
    const cluster = await getJson<{ metadata: Record<string, number> }>(second, '/api/v1/clusters/dgx-lab');
    expect(cluster.body.metadata).toMatchObject({ total_hosts: 31, total_gpus: 247 });
    expect(existsSync(dataDir)).toBe(false);
  });
});
