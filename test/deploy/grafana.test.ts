/**
 * Grafana provisioning (deployments/grafana): the datasource points at the dashboard's uid, the
 * provider loads the dashboards directory, and every SQL query of the dashboard (panels and template
 * variables) runs against the project's schema on a real PostgreSQL, with Grafana's macros replaced
 * the way Grafana expands them, returning the GPU data written there.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { parseYamlDocs, read } from './support.js';

interface Target {
  rawSql: string;
  format: string;
}
interface Panel {
  title: string;
  type: string;
  targets?: Target[];
  datasource?: { uid: string };
}
interface Dashboard {
  uid: string;
  panels: Panel[];
  templating: { list: { name: string; query: string; datasource: { uid: string } }[] };
}

const dashboard = JSON.parse(read('deployments/grafana/dashboards/gpu-telemetry.json')) as Dashboard;
const datasources = (
  parseYamlDocs('deployments/grafana/provisioning/datasources/postgres.yaml')[0] as {
    datasources: { uid: string; type: string; jsonData: Record<string, unknown> }[];
  }
).datasources;

/** Expand Grafana's SQL macros and template variables as Grafana does for the PostgreSQL datasource. */
function expand(sql: string): string {
  return sql
    .replace(/\$__timeGroupAlias\(([^,]+),\s*\$__interval\)/g, 'date_trunc(\'minute\', $1) AS "time"')
    .replace(
      /\$__timeFilter\(([^)]+)\)/g,
      "$1 BETWEEN '2025-07-18T00:00:00Z'::timestamptz AND '2025-07-19T00:00:00Z'::timestamptz",
    )
    .replace(/\$cluster\b/g, "'dgx-lab'")
    .replace(/\$host\b/g, "'host-1','host-2'")
    .replace(/\$gpu\b/g, "'0','1'");
}

let postgres: PostgresHarness;
let client: pg.Client;

beforeAll(async () => {
  postgres = await startPostgres();
  const url = await postgres.createDatabase('grafana');
  const store = await createPostgresSampleStore({ connectionString: url, logger: createLogger('silent') });
  await store.migrate();
  await store.close();
  client = new pg.Client({ connectionString: url });
  await client.connect();
  // A little data on the project's schema: 2 hosts x 2 GPUs x 3 metrics x 3 samples.
  for (const host of ['host-1', 'host-2']) {
    for (const gpu of ['0', '1']) {
      for (const metric of ['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_XID_ERRORS']) {
        const { rows } = await client.query<{ id: number }>(
          `INSERT INTO series (series_key, cluster_id, hostname, gpu_id, uuid, device, model_name, metric, pod)
           VALUES ($1, 'dgx-lab', $2, $3, $4, $5, 'NVIDIA H100 80GB HBM3', $6, $7) RETURNING id`,
          [
            `${host}/${gpu}/${metric}`,
            host,
            gpu,
            `GPU-${host}-${gpu}`,
            `nvidia${gpu}`,
            metric,
            `job-${host}`,
          ],
        );
        for (let i = 0; i < 3; i++) {
          await client.query(`INSERT INTO samples (series_id, ts, value) VALUES ($1, $2, $3)`, [
            rows[0]!.id,
            new Date(Date.UTC(2025, 6, 18, 20, 42, 34 + i * 10)),
            metric === 'DCGM_FI_DEV_XID_ERRORS' ? (i === 2 ? 79 : 0) : 40 + i,
          ]);
        }
      }
    }
  }
}, 120_000);

afterAll(async () => {
  await client?.end();
  await postgres?.stop();
});

describe('Grafana provisioning', () => {
  it('provisions the PostgreSQL datasource the dashboard uses, and a file provider', () => {
    expect(datasources).toHaveLength(1);
    expect(datasources[0]).toMatchObject({ type: 'postgres', uid: 'nexus-telemetry-pg' });
    for (const panel of dashboard.panels)
      expect(panel.datasource?.uid, panel.title).toBe('nexus-telemetry-pg');
    const provider = parseYamlDocs('deployments/grafana/provisioning/dashboards/nexus.yaml')[0] as {
      providers: { type: string; options: { path: string } }[];
    };
    expect(provider.providers[0]).toMatchObject({
      type: 'file',
      options: { path: '/var/lib/grafana/dashboards' },
    });
  });

  it('has GPU panels for the DCGM metrics of the sample', () => {
    const sql = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.rawSql);
    for (const metric of [
      'DCGM_FI_DEV_GPU_UTIL',
      'DCGM_FI_DEV_GPU_TEMP',
      'DCGM_FI_DEV_POWER_USAGE',
      'DCGM_FI_DEV_FB_USED',
      'DCGM_FI_DEV_MEM_COPY_UTIL',
      'DCGM_FI_DEV_SM_CLOCK',
    ]) {
      expect(
        sql.some((q) => q.includes(`'${metric}'`)),
        metric,
      ).toBe(true);
    }
  });

  it('runs every template variable query on the schema', async () => {
    const results: Record<string, unknown[]> = {};
    for (const variable of dashboard.templating.list) {
      results[variable.name] = (await client.query(expand(variable.query))).rows.map(
        (r) => Object.values(r)[0],
      );
    }
    expect(results).toEqual({ cluster: ['dgx-lab'], host: ['host-1', 'host-2'], gpu: ['0', '1'] });
  });

  it.each(dashboard.panels.map((p) => [p.title, p] as const))(
    'panel "%s" runs on the schema',
    async (_t, panel) => {
      for (const target of panel.targets ?? []) {
        const { rows, fields } = await client.query(expand(target.rawSql));
        if (target.format === 'time_series') {
          expect(fields.map((f) => f.name).sort(), panel.title).toEqual(['metric', 'time', 'value']);
        }
        if (
          /GPU utilization|temperature|GPUs reporting|Hosts reporting|Latest|XID|Workload/.test(panel.title)
        ) {
          expect(rows.length, panel.title).toBeGreaterThan(0);
        }
      }
    },
  );
});
