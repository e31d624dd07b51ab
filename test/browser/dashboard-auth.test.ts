/**
 * The dashboard with AUTH=token: the page and its assets load without a token (they hold no data),
 * the data calls and /ws are refused until a token is saved in the page's token field; then the
 * overview and the live stream work (the token goes as a Bearer header and as the /ws auth message).
 */
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import { CLUSTER, startSampleServer, type SampleServer } from '../ws/harness.js';
import { launchChromium, recordRequests } from './dashboard-support.js';

let server: SampleServer;
let browser: Browser;
let token = '';

beforeAll(async () => {
  server = await startSampleServer({ AUTH: 'token' });
  token = (await tokenStoreOf(server.runtime.store)!.create('dashboard-test', ['read'])).token;
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('dashboard with AUTH=token', () => {
  it('loads without a token, asks for one, then shows the fleet live', async () => {
    const page = await browser.newPage();
    const requests = recordRequests(page);
    const statuses = new Map<string, number>();
    page.on('response', (r) => statuses.set(new URL(r.url()).pathname, r.status()));
    const response = await page.goto(`${server.base}/`);
    expect(response?.status()).toBe(200);
    await page.locator('.error', { hasText: 'Could not load clusters' }).waitFor({ timeout: 15_000 });
    expect(statuses.get('/api/v1/clusters')).toBe(401);
    await page.locator('#live-state[data-state="reconnecting"]').waitFor({ timeout: 15_000 });
    expect(await page.locator('#live-state').getAttribute('title')).toContain('token');

    await page.locator('.token summary').click();
    await page.fill('.token input', token);
    await page.click('.token button');
    const card = page.locator(`.cluster[data-cluster="${CLUSTER}"]`);
    await card.locator('[data-count="gpus"]', { hasText: /^247$/ }).waitFor({ timeout: 15_000 });
    await page.locator('#live-state[data-state="live"]').waitFor({ timeout: 20_000 });
    expect(statuses.get('/api/v1/clusters')).toBe(200);
    // Kept in the browser: a reload stays signed in.
    await page.reload();
    await page.locator('#live-state[data-state="live"]').waitFor({ timeout: 20_000 });
    expect(requests.some((u) => u.includes(token))).toBe(false);
    await page.close();
  });
});
