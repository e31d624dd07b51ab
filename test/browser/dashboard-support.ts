/**
 * Shared parts of the dashboard's browser tests: Debian's Chromium (a clear failure naming the
 * package when it is missing), screenshots to test-results/screenshots/ (copied to docs/screenshots/
 * with UPDATE_DOC_SCREENSHOTS=1), and the offline check on every request the page made.
 */
import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SCREENSHOTS = `${ROOT}test-results/screenshots`;

/** Launch headless Chromium with the project's flags. */
export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install the Debian package "chromium" (apt-get install chromium) to run the browser test`,
    );
  }
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}

/**
 * Screenshot the page as test-results/screenshots/<name>.png; with UPDATE_DOC_SCREENSHOTS=1 also
 * as docs/screenshots/<name>.png, unless `docs` is false.
 */
export async function screenshot(page: Page, name: string, docs = true): Promise<void> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const path = `${SCREENSHOTS}/${name}.png`;
  await page.screenshot({ path });
  if (docs && process.env.UPDATE_DOC_SCREENSHOTS === '1') {
    mkdirSync(`${ROOT}docs/screenshots`, { recursive: true });
    copyFileSync(path, `${ROOT}docs/screenshots/${name}.png`);
  }
}

/** Record every request URL the page makes (HTTP and WebSocket). */
export function recordRequests(page: Page): string[] {
  const urls: string[] = [];
  page.on('request', (r) => urls.push(r.url()));
  page.on('websocket', (ws) => urls.push(ws.url()));
  return urls;
}
