/**
 * GraphQL's `analyticsAttribution` carries the cost figures: with `ANALYTICS_PRICES` set, each
 * group's allocated and effective cost are its allocated and busy GPU-hours times its model's price
 * (every generated GPU is an H100 here), and equal REST's `allocated_cost` / `effective_cost`.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

const H = 3_600_000;
const T0 = Date.UTC(2026, 0, 5, 0, 0, 0);
const PRICE = 2.5;
const dir = mkdtempSync(join(tmpdir(), 'nexus-graphql-cost-'));
let runtime: EmbeddedRuntime;

beforeAll(async () => {
  const config = loadConfig(
    {},
    {
      MEMORY: 'true',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      ANALYTICS_PRICES: `H100=${PRICE},default=100`,
    },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent') });
  const csv = join(dir, 'jobs.csv');
  await writeDcgmCsv(csv, {
    hosts: 2,
    gpusPerHost: 2,
    intervalMs: 60_000,
    start: T0,
    durationMs: 2 * H,
    workloadFraction: 1,
  });
  expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
}, 120_000);

afterAll(async () => {
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('GraphQL analyticsAttribution cost fields', () => {
  it('prices allocated and busy GPU-hours by model, as REST does', async () => {
    const from = new Date(T0).toISOString();
    const to = new Date(T0 + 2 * H).toISOString();
    const response = await runtime.app.inject({
      method: 'POST',
      url: '/graphql',
      payload: {
        query: `{ analyticsAttribution(from: "${from}", to: "${to}", by: "namespace") {
          key gpuHoursAllocated gpuHoursBusy allocatedCost effectiveCost } }`,
      },
    });
    const body = response.json() as {
      data: {
        analyticsAttribution: {
          key: string;
          gpuHoursAllocated: number;
          gpuHoursBusy: number;
          allocatedCost: number;
          effectiveCost: number;
        }[];
      };
      errors?: unknown;
    };
    expect(body.errors).toBeUndefined();
    const rows = body.data.analyticsAttribution;
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.gpuHoursAllocated).toBeGreaterThan(0);
      expect(r.allocatedCost).toBeCloseTo(r.gpuHoursAllocated * PRICE, 9);
      expect(r.effectiveCost).toBeCloseTo(r.gpuHoursBusy * PRICE, 9);
    }
    const rest = (
      await runtime.app.inject({
        method: 'GET',
        url: `/api/v1/analytics/attribution?start=${from}&end=${to}&by=namespace`,
      })
    ).json() as { rows: { key: string; allocated_cost: number; effective_cost: number }[] };
    expect(rows.map((r) => [r.key, r.allocatedCost, r.effectiveCost])).toEqual(
      rest.rows.map((r) => [r.key, r.allocated_cost, r.effective_cost]),
    );
  });
});
