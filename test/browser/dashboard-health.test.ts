/**
 * The dashboard's health and alerts views on generated data with injected faults (an XID 79 on host
 * 1 GPU 0, overheating on host 2 GPU 1, thermal throttling on host 2 GPU 0), alerts evaluated by `start`'s
 * evaluator at injected times:
 * - `#/health` lists exactly the faulty GPUs with the reason codes of their faults, in the states
 *   the REST API gives; after the faults end (more data ingested) the list empties live, no reload;
 * - the faulty GPU's tile carries its health badge;
 * - `#/alerts` shows the pending/firing alerts live from the /ws alert stream, the same set as
 *   `GET /api/v1/alerts`, the menu counts the firing ones, and resolved alerts leave the list.
 * Screenshots of both views are written for docs/.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv, type GeneratorOptions } from '../../src/generate/generator.js';
import { SAMPLE_METRICS } from '../../src/generate/profiles.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { launchChromium, recordRequests, screenshot } from './dashboard-support.js';

const M = 60_000;
/** Recent data (a whole minute, 40 min ago), so no GPU is stale for the API's reader clock. */
const T0 = Math.floor(Date.now() / M) * M - 40 * M;
const CLUSTER = 'health';
const HOST = (n: number) => `sim-dgx1-hgpu-${String(n).padStart(3, '0')}`;
const dir = mkdtempSync(join(tmpdir(), 'nexus-dashboard-health-'));
let now = T0;
let runtime: EmbeddedRuntime;
let browser: Browser;
let page: Page;
let requests: string[];

const fleet: Partial<GeneratorOptions> = { hosts: 2, gpusPerHost: 2, intervalMs: 30_000 };

beforeAll(async () => {
  const config = loadConfig(
    {},
    {
      MEMORY: 'true',
      HOST: '127.0.0.1',
      PORT: '0',
      LOG_LEVEL: 'silent',
      CLUSTER_ID: CLUSTER,
      STALE_AFTER: '2h',
    },
  );
  runtime = await startEmbedded({ config, logger: createLogger('silent'), alertClock: () => now });
  const csv = join(dir, 'faults.csv');
  await writeDcgmCsv(csv, {
    ...fleet,
    start: T0,
    durationMs: 6 * M,
    faults: [
      { kind: 'xid', host: '1', gpu: 0, fromMs: 4 * M, toMs: 6 * M, params: { code: 79 } },
      { kind: 'overheat', host: '2', gpu: 1, fromMs: 2 * M, toMs: 6 * M },
      { kind: 'thermal-throttle', host: '2', gpu: 0, fromMs: 4 * M, toMs: 6 * M },
    ],
  });
  expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  requests = recordRequests(page);
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Evaluate the rules at each minute from `from` to `to` (minutes after T0). */
async function evaluate(from: number, to: number): Promise<void> {
  for (let t = from; t <= to; t++) {
    now = T0 + t * M;
    await runtime.alerting.evaluator.evaluateAt();
  }
}

interface Row {
  host: string | null;
  gpu: string | null;
  state: string | null;
  codes: string[];
}

const healthRows = (p: Page) =>
  p.locator('#health tbody tr').evaluateAll((trs) =>
    trs.map((tr) => ({
      host: tr.getAttribute('data-host'),
      gpu: tr.getAttribute('data-gpu'),
      state: tr.getAttribute('data-state'),
      codes: [...tr.querySelectorAll('[data-code]')].map((li) => li.getAttribute('data-code') ?? ''),
    })),
  ) as Promise<Row[]>;

describe('dashboard health and alerts views', () => {
  it('lists the faulty GPUs with their reasons, and marks their tiles', async () => {
    await page.goto(`${runtime.address}/#/health`);
    await page.locator('#health tbody tr').nth(2).waitFor({ timeout: 30_000 });
    const rows = await healthRows(page);
    // The API's own answer gives the states; the fault plan gives who and why.
    const api = (await (
      await fetch(`${runtime.address}/api/v1/health/gpus?state=warning,critical`)
    ).json()) as {
      hostname: string;
      gpu_id: string;
      health: { state: string };
    }[];
    const stateOf = (host: string, gpu: string) =>
      api.find((g) => g.hostname === host && g.gpu_id === gpu)?.health.state ?? 'missing';
    expect(rows.map((r) => `${r.host}/${r.gpu}`).sort()).toEqual(
      [`${HOST(1)}/0`, `${HOST(2)}/0`, `${HOST(2)}/1`].sort(),
    );
    for (const r of rows) expect(r.state).toBe(stateOf(r.host!, r.gpu!));
    const codes = (host: string, gpu: string) => rows.find((r) => r.host === host && r.gpu === gpu)!.codes;
    expect(codes(HOST(1), '0')).toEqual(['XID_ERROR']);
    expect(codes(HOST(2), '1')).toEqual(['OVERHEATING']);
    expect(codes(HOST(2), '0')).toEqual(['THROTTLE_SW_THERMAL']);
    expect(await page.locator('#health-count').textContent()).toBe('3 GPUs');
    // Critical first.
    expect(rows[0]!.state).toBe('critical');
    await screenshot(page, 'health');

    // The XID GPU's tile on its host page.
    await page.goto(`${runtime.address}/#/clusters/${CLUSTER}/hosts/${HOST(1)}`);
    const tile = page.locator('.tile[data-gpu="0"]');
    await tile.waitFor({ timeout: 30_000 });
    expect(await tile.getAttribute('data-health')).toBe('critical');
    expect(await tile.locator('.tile-health').getAttribute('aria-label')).toBe('health critical');
    expect(await page.locator('.tile[data-gpu="1"]').getAttribute('data-health')).toBe('ok');
    expect(await page.locator('.tile[data-gpu="1"] .tile-health').count()).toBe(0);
  });

  it('shows pending and firing alerts live, counts the firing ones, and drops resolved ones', async () => {
    await page.goto(`${runtime.address}/#/alerts`);
    await page.locator('#alerts-empty').waitFor({ timeout: 30_000 });
    await evaluate(0, 3);
    // Overheating since 2 min, `for: 2m`: pending at 3 min.
    await page
      .locator('#alerts tr[data-alert="GPUOverheating"][data-state="PENDING"]')
      .waitFor({ timeout: 10_000 });
    await evaluate(4, 5);
    await page
      .locator('#alerts tr[data-alert="GPUOverheating"][data-state="FIRING"]')
      .waitFor({ timeout: 10_000 });
    const api = (await (await fetch(`${runtime.address}/api/v1/alerts`)).json()) as {
      data: { alerts: { labels: Record<string, string>; state: string }[] };
    };
    const expected = api.data.alerts
      .map((a) => `${a.labels.alertname} ${a.labels.Hostname}/${a.labels.gpu} ${a.state.toUpperCase()}`)
      .sort();
    const shown = async () =>
      (
        await page
          .locator('#alerts tbody tr')
          .evaluateAll((trs) =>
            trs.map(
              (tr) =>
                `${tr.getAttribute('data-alert')} ${tr.children[2]?.textContent?.replace(' GPU ', '/')} ${tr.getAttribute('data-state')}`,
            ),
          )
      ).sort();
    await expect.poll(shown, { timeout: 10_000 }).toEqual(expected);
    expect(expected).toEqual(
      expect.arrayContaining([`GPUOverheating ${HOST(2)}/1 FIRING`, `GPUXidCritical ${HOST(1)}/0 FIRING`]),
    );
    const firing = expected.filter((e) => e.endsWith('FIRING')).length;
    expect(await page.locator('header nav a', { hasText: 'Alerts' }).textContent()).toBe(
      `Alerts (${firing} firing)`,
    );
    await screenshot(page, 'alerts');
    // A click on the alert's target opens its GPU page, with its health panel.
    await page.locator('#alerts tr[data-alert="GPUOverheating"] a').click();
    await page.locator('#gpu-health').waitFor({ timeout: 10_000 });
    expect(await page.locator('#gpu-health strong').first().textContent()).toBe('Health: critical');
    expect(await page.locator('#gpu-health [data-code]').getAttribute('data-code')).toBe('OVERHEATING');
  });

  it('clears health and alerts live when the faults end', async () => {
    await page.goto(`${runtime.address}/#/health`);
    await page.locator('#health tbody tr').nth(2).waitFor({ timeout: 30_000 });
    // 24 more minutes of healthy data: every reason expires (XIDs and counters after 5 min).
    const csv = join(dir, 'healthy.csv');
    // The fault's field stays in the data (at 0), as dcgm-exporter keeps exporting it.
    await writeDcgmCsv(csv, {
      ...fleet,
      start: T0 + 6 * M,
      durationMs: 24 * M,
      metrics: [...SAMPLE_METRICS, 'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS'],
    });
    expect((await runtime.ingest({ spec: csv })).badRows).toBe(0);
    await page.locator('#health-empty').waitFor({ timeout: 15_000 });
    expect(await page.locator('#health tbody tr').count()).toBe(0);

    await page.locator('header nav a', { hasText: 'Alerts' }).click();
    await page.locator('#alerts tr').first().waitFor({ timeout: 10_000 });
    // XID alerts keep firing for 15 min after the last XID (6 min): all resolved by 28 min.
    await evaluate(6, 28);
    await page.locator('#alerts-empty').waitFor({ timeout: 15_000 });
    expect(await page.locator('header nav a', { hasText: 'Alerts' }).textContent()).toBe('Alerts');
    const api = (await (await fetch(`${runtime.address}/api/v1/alerts`)).json()) as {
      data: { alerts: unknown[] };
    };
    expect(api.data.alerts).toEqual([]);
    const port = new URL(runtime.address!).port;
    expect(
      requests.filter(
        (u) => !u.startsWith(`http://127.0.0.1:${port}/`) && !u.startsWith(`ws://127.0.0.1:${port}/`),
      ),
    ).toEqual([]);
  }, 120_000);
});
