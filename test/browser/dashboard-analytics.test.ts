/**
 * The dashboard's analytics page on generated workloads (4 GPUs, 3 hours, jobs starting, running and ending):
 * the attribution table shows the API's rows (same groups, GPU-hours to 2 decimals), switching
 * "by" regroups it (a deep link), the idle and outlier tables answer, and the CSV button downloads
 * exactly what the API gives for `Accept: text/csv`.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { launchChromium, recordRequests, screenshot } from './dashboard-support.js';

const H = 3_600_000;
/** Three whole hours of data, ending an hour ago. */
const T0 = Math.floor(Date.now() / H) * H - 4 * H;
const END = new Date(T0 + 3 * H).toISOString();
const dir = mkdtempSync(join(tmpdir(), 'nexus-dashboard-analytics-'));
let runtime: EmbeddedRuntime;
let browser: Browser;

beforeAll(async () => {
  const config = loadConfig(
    {},
    { MEMORY: 'true', HOST: '127.0.0.1', PORT: '0', LOG_LEVEL: 'silent', CLUSTER_ID: 'jobs' },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent') });
  const csv = join(dir, 'jobs.csv');
  await writeDcgmCsv(csv, {
    hosts: 2,
    gpusPerHost: 2,
    intervalMs: 60_000,
    start: T0,
    durationMs: 3 * H,
    workloadFraction: 1,
  });
  expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface AttributionRow {
  key: string;
  gpus: number;
  gpu_hours_allocated: number;
  gpu_hours_busy: number;
}

describe('dashboard analytics page', () => {
  it('shows the API attribution per group, regroups, and downloads the CSV', async () => {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 800 },
      acceptDownloads: true,
    });
    const page = await context.newPage();
    const requests = recordRequests(page);
    const query = `start=${new Date(T0 - H).toISOString()}&end=${END}`;
    const api = async (by: string) =>
      (
        (await (await fetch(`${runtime.address}/api/v1/analytics/attribution?${query}&by=${by}`)).json()) as {
          rows: AttributionRow[];
        }
      ).rows;

    await page.goto(`${runtime.address}/#/analytics?range=6h&end=${END}`);
    const table = page.locator('#analytics-attribution[data-state="ok"]');
    await table.waitFor({ timeout: 30_000 });
    const shown = async () =>
      table
        .locator('tbody tr')
        .evaluateAll((trs) =>
          trs.map((tr) =>
            [...tr.querySelectorAll('td')]
              .filter((td) =>
                ['key', 'gpus', 'gpu_hours_allocated'].includes(td.getAttribute('data-field') ?? ''),
              )
              .map((td) => td.textContent),
          ),
        );
    const expected = (rows: AttributionRow[]) =>
      rows.map((r) => [r.key, String(r.gpus), r.gpu_hours_allocated.toFixed(2)]);
    const byNamespace = await api('namespace');
    expect(byNamespace.length).toBeGreaterThan(0);
    // Jobs come and go on 4 GPUs over 3 h: at most 12 GPU-hours held in all.
    const held = byNamespace.reduce((sum, r) => sum + r.gpu_hours_allocated, 0);
    expect(held).toBeGreaterThan(1);
    expect(held).toBeLessThanOrEqual(12);
    expect(await shown()).toEqual(expected(byNamespace));
    await screenshot(page, 'analytics');

    await page.selectOption('#analytics-by', 'host');
    expect(page.url()).toContain('by=host');
    const byHost = await api('host');
    expect(byHost.map((r) => r.key).sort()).toEqual(['sim-dgx1-hgpu-001', 'sim-dgx1-hgpu-002']);
    await expect.poll(shown, { timeout: 10_000 }).toEqual(expected(byHost));

    // Idle and outlier tables answered (their contents are the analytics tests' subject).
    await page.locator('#analytics-idle[data-state="ok"]').waitFor({ timeout: 30_000 });
    await page.locator('#analytics-outliers[data-state="ok"]').waitFor({ timeout: 30_000 });

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      table.getByRole('button', { name: 'CSV' }).click(),
    ]);
    const csv = readFileSync((await download.path())!, 'utf8');
    const apiCsv = await (
      await fetch(`${runtime.address}/api/v1/analytics/attribution?${query}&by=host`, {
        headers: { accept: 'text/csv' },
      })
    ).text();
    expect(csv).toBe(apiCsv);
    expect(csv.split('\r\n')[0]).toMatch(/^key,gpus,gpu_hours_allocated,/);

    const port = new URL(runtime.address!).port;
    expect(
      requests.filter(
        (u) =>
          !u.startsWith(`http://127.0.0.1:${port}/`) &&
          !u.startsWith(`ws://127.0.0.1:${port}/`) &&
          !u.startsWith('blob:'),
      ),
    ).toEqual([]);
    await context.close();
  }, 120_000);
});
