/**
 * The GraphQL IDE in a real browser: Debian's chromium (driven by playwright-core, offline: the
 * page loads nothing from outside the server) opens GET /graphql, runs the guide's query (the page's
 * starting document, checked to be the guide's), and shows the cluster's data; it also runs the
 * guide's subscription over WebSocket from the page and shows pushed events.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GUIDE_QUERY, GUIDE_SUBSCRIPTION, startSampleServer, type SampleServer } from '../ws/harness.js';

const CHROMIUM = '/usr/bin/chromium';

let server: SampleServer;
let browser: Browser;
let page: Page;
const requests: string[] = [];

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install the Debian package "chromium" (apt-get install chromium) to run the browser test`,
    );
  }
  server = await startSampleServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
  page = await browser.newPage();
  page.on('request', (r) => requests.push(r.url()));
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const normalize = (q: string) => q.replace(/\s+/g, ' ').trim();

describe('GraphQL IDE at GET /graphql', () => {
  it("loads, runs the guide's query and shows the data", async () => {
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    const response = await page.goto(`${server.base}/graphql`);
    expect(response?.status()).toBe(200);
    expect(await page.title()).toContain('GraphQL');
    expect(normalize(await page.inputValue('#query'))).toBe(normalize(GUIDE_QUERY));

    await page.fill('#query', GUIDE_QUERY);
    await page.click('#run');
    await page.locator('#result', { hasText: '"totalGPUs"' }).waitFor({ timeout: 30_000 });
    const shown = JSON.parse((await page.textContent('#result')) ?? '{}') as {
      data: {
        cluster: {
          totalHosts: number;
          totalGPUs: number;
          hosts: { gpus: { status: { healthy: boolean } }[] }[];
        };
      };
    };
    expect(shown.data.cluster.totalHosts).toBe(31);
    expect(shown.data.cluster.totalGPUs).toBe(247);
    expect(shown.data.cluster.hosts.flatMap((h) => h.gpus)).toHaveLength(247);
    expect(await page.textContent('#status')).toMatch(/HTTP 200/);
    expect(errors).toEqual([]);
    // Offline: every request went to the server itself.
    expect(requests.every((u) => u.startsWith(server.base) || u.startsWith(server.wsBase))).toBe(true);
  });

  it("runs the guide's subscription from the page and shows pushed events", async () => {
    await page.fill('#query', GUIDE_SUBSCRIPTION);
    await page.click('#run');
    await page.locator('#status', { hasText: /^subscribed$/ }).waitFor({ timeout: 15_000 });
    await server.replay();
    await page.locator('#result', { hasText: 'GPU_UPDATE' }).waitFor({ timeout: 30_000 });
    expect(await page.textContent('#result')).toContain('"gpuUtilization"');
    await page.click('#stop');
  });

  it('lists the schema with descriptions', async () => {
    await page.click('#schema');
    await page.locator('#docs', { hasText: 'TelemetryEvent' }).waitFor({ timeout: 15_000 });
    expect(await page.textContent('#docs')).toContain('healthy');
  });
});
