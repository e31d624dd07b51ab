/**
 * The dashboard's scrape targets view on a server that scrapes (a dcgm-exporter stand-in and a
 * refused address): the menu shows "Targets", the view lists both with their health, and the
 * scraped fleet (31 hosts, 247 GPUs) shows in the overview.
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { refusedUrl, startStandin, type Standin } from '../support/dcgm-exporter-standin.js';
import { CLUSTER, startSampleServer, type SampleServer } from '../ws/harness.js';
import { launchChromium, recordRequests, screenshot } from './dashboard-support.js';

let server: SampleServer;
let browser: Browser;
let good: Standin;
let refused: string;

beforeAll(async () => {
  good = await startStandin();
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
});
