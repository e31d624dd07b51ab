/**
 * The dashboard's scrape targets view on a server that scrapes (a dcgm-exporter stand-in and a
 * refused address): the menu shows "Targets", the view lists both with their health, and the
 * scraped fleet (31 hosts, 247 GPUs) shows in the overview. When the exporter stops exposing a GPU,
 * its tile turns "gone" live (no reload), and back to active when it returns.
 */
import { readFileSync } from 'node:fs';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  refusedUrl,
  SAMPLE_PROM_PATH,
  startStandin,
  type Standin,
} from '../support/dcgm-exporter-standin.js';
import { CLUSTER, startSampleServer, type SampleServer } from '../ws/harness.js';
import { launchChromium, recordRequests, screenshot } from './dashboard-support.js';

let server: SampleServer;
let browser: Browser;
let good: Standin;
let refused: string;
const HOST = 'mtv5-dgx1-hgpu-012';
const SAMPLE = readFileSync(SAMPLE_PROM_PATH, 'utf8');
/** The exposition without GPU 3 of HOST (as dcgm-exporter serves it once the GPU fell off the bus). */
const WITHOUT_GPU3 = SAMPLE.split('\n')
  .filter((line) => !(line.includes(`Hostname="${HOST}"`) && line.includes('gpu="3"')))
  .join('\n');
let body = SAMPLE;

beforeAll(async () => {
  good = await startStandin({ body: () => body });
  refused = await refusedUrl();
  server = await startSampleServer(
    { SCRAPE_TARGETS: [good.url, refused].join(','), SCRAPE_INTERVAL: '10s', SCRAPE_TIMEOUT: '5s' },
    { ingest: false },
  );
  // One round of scrapes (as `start --scrape` runs them on a timer), stored before this resolves.
  await server.runtime.scrape({ rounds: 1 });
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  await good?.close();
});

describe('dashboard scrape targets view', () => {
  it('lists each target with its health, from the menu', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    const requests = recordRequests(page);
    await page.goto(`${server.base}/`);
    const card = page.locator(`.cluster[data-cluster="${CLUSTER}"]`);
    await card.locator('[data-count="gpus"]', { hasText: /^247$/ }).waitFor({ timeout: 30_000 });
    await page.locator('header nav a', { hasText: 'Targets' }).click();
    expect(new URL(page.url()).hash).toBe('#/targets');
    await page.locator(`#targets tr[data-health="down"]`).waitFor({ timeout: 30_000 });
    const rows = await page
      .locator('#targets tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [tr.children[0]?.textContent, tr.getAttribute('data-health')]));
    expect(rows).toEqual(
      expect.arrayContaining([
        [good.url, 'up'],
        [refused, 'down'],
      ]),
    );
    expect(rows).toHaveLength(2);
    await screenshot(page, 'targets');
    const port = new URL(server.base).port;
    const outside = requests.filter(
      (u) => !u.startsWith(`http://127.0.0.1:${port}/`) && !u.startsWith(`ws://127.0.0.1:${port}/`),
    );
    expect(outside).toEqual([]);
    await page.close();
  });

  it('marks a GPU the exporter stops exposing as gone, live, and active again when it returns', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${server.base}/#/clusters/${CLUSTER}/hosts/${HOST}`);
    const tile = page.locator('.tile[data-gpu="3"]');
    await tile.waitFor({ timeout: 30_000 });
    expect(await tile.getAttribute('data-state')).toBe('active');
    expect(SAMPLE.length - WITHOUT_GPU3.length).toBeGreaterThan(0);

    body = WITHOUT_GPU3;
    await server.runtime.scrape({ rounds: 1 });
    await page.locator('.tile[data-gpu="3"][data-state="gone"]').waitFor({ timeout: 10_000 });
    expect(await tile.locator('.tile-mark').textContent()).toBe('gone');
    // Its siblings stay active, and the tile count is unchanged (gone is marked, not removed).
    const states = await page
      .locator('.tile')
      .evaluateAll((tiles) =>
        tiles.map((t) => `${t.getAttribute('data-gpu')}:${t.getAttribute('data-state')}`),
      );
    expect(states.sort()).toEqual([
      '0:active',
      '1:active',
      '2:active',
      '3:gone',
      '4:active',
      '5:active',
      '7:active',
    ]);
    await screenshot(page, 'gone-tile', false);

    body = SAMPLE;
    await server.runtime.scrape({ rounds: 1 });
    await page.locator('.tile[data-gpu="3"][data-state="active"]').waitFor({ timeout: 10_000 });
    expect(await tile.locator('.tile-mark').count()).toBe(0);
    await page.close();
  });
});
