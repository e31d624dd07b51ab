/**
 * GraphiQL at GET /graphql in a real browser: Debian's chromium (driven by playwright-core,
 * offline: the page loads nothing from outside the server) opens the bundled GraphiQL
 * (dist/web/graphiql, built by the test setup or `npm run build`), finds the guide's query as its
 * starting document, runs it and shows the cluster's data; runs the guide's subscription (the
 * second tab) over graphql-ws and shows pushed events. With AUTH on, the page itself is public and
 * the token typed into the headers editor goes with queries and in graphql-ws's connection_init.
 * Without a build, a browser gets 503 WEB_NOT_BUILT.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type Page, type WebSocket as PageSocket } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiOptionsFromConfig, buildApp } from '../../src/api/app.js';
import { GRAPHIQL_DIST } from '../../src/api/graphql/ide.js';
import { tokenStoreOf } from '../../src/auth/token-store.js';
import { loadConfig } from '../../src/config/config.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import { createLogger } from '../../src/util/logger.js';
import {
  CLUSTER,
  GUIDE_QUERY,
  GUIDE_SUBSCRIPTION,
  startSampleServer,
  type SampleServer,
} from '../ws/harness.js';

const CHROMIUM = '/usr/bin/chromium';
/** The open one of GraphiQL's variables and headers editors (auth on: the headers). */
const HEADERS_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';

let server: SampleServer;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} is missing: install the Debian package "chromium" (apt-get install chromium) to run the browser test`,
    );
  }
  if (!existsSync(join(GRAPHIQL_DIST, 'index.html'))) {
    throw new Error(`GraphiQL is not built (${GRAPHIQL_DIST} is missing): run \`npm run build\``);
  }
  server = await startSampleServer();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

const normalize = (q: string) => q.replace(/\s+/g, ' ').trim();

/** A fresh page recording every request URL, page error and graphql-ws frame. */
async function openPage(): Promise<{
  page: Page;
  requests: string[];
  errors: string[];
  frames: { sent: string[]; received: string[] };
}> {
  const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
  const requests: string[] = [];
  const errors: string[] = [];
  const frames = { sent: [] as string[], received: [] as string[] };
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400) errors.push(`${r.status()} ${r.url()}`);
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('websocket', (ws: PageSocket) => {
    ws.on('framesent', (f) => frames.sent.push(String(f.payload)));
    ws.on('framereceived', (f) => frames.received.push(String(f.payload)));
  });
  return { page, requests, errors, frames };
}

/** The text monaco shows in `selector` (non-breaking spaces as spaces). */
async function editorText(page: Page, selector: string): Promise<string> {
  return ((await page.locator(`${selector} .view-lines`).first().innerText()) ?? '').replace(/\u00a0/g, ' ');
}

/**
 * Replace the contents of the monaco editor in `selector` with `text`. Monaco closes brackets and
 * quotes as they are typed: what it added after the cursor is deleted.
 */
async function replaceEditorText(page: Page, selector: string, text: string): Promise<void> {
  await page.locator(`${selector} .view-lines`).first().click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(text);
  await page.keyboard.press('Shift+Control+End');
  await page.keyboard.press('Delete');
}

/** Wait until `check()` holds, polling; throws `what` after `timeoutMs`. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Bytes of the built GraphiQL's assets: as built, gzip and brotli (the .gz and .br beside them). */
function bundleBytes(names?: readonly string[]): { raw: number; gzip: number; brotli: number } {
  const dir = join(GRAPHIQL_DIST, 'assets');
  const size = (name: string) => (existsSync(join(dir, name)) ? statSync(join(dir, name)).size : 0);
  const assets = names ?? readdirSync(dir).filter((n) => !/\.(br|gz)$/.test(n));
  const sum = (f: (n: string) => number) => assets.reduce((total, n) => total + f(n), 0);
  return {
    raw: sum(size),
    // Assets under 1 KiB are not precompressed: counted as they are.
    gzip: sum((n) => size(`${n}.gz`) || size(n)),
    brotli: sum((n) => size(`${n}.br`) || size(n)),
  };
}

describe('GraphiQL at GET /graphql', () => {
  it("loads offline, starts with the guide's query, runs it and shows the data", async () => {
    const { page, requests, errors } = await openPage();
    const started = Date.now();
    const response = await page.goto(`${server.base}/graphql`);
    expect(response?.status()).toBe(200);
    expect(response?.headers()['content-security-policy']).toContain("script-src 'self'");
    expect(await page.title()).toContain('GraphQL');
    const execute = page.locator('.graphiql-execute-button');
    await execute.waitFor({ timeout: 30_000 });
    await page.locator('.graphiql-query-editor .view-lines').first().waitFor({ timeout: 30_000 });
    const ready = Date.now() - started;
    const loaded = requests
      .filter((u) => u.startsWith(`${server.base}/graphql/assets/`))
      .map((u) => u.slice(`${server.base}/graphql/assets/`.length));
    const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
    const all = bundleBytes();
    const first = bundleBytes(loaded);
    console.log(
      `GraphiQL ready in ${ready} ms (cold cache); bundle ${kb(all.raw)} (gzip ${kb(all.gzip)}, brotli ${kb(all.brotli)}); ` +
        `the page loaded ${loaded.length} assets: ${kb(first.raw)} (brotli ${kb(first.brotli)})`,
    );

    // The starting document is the guide's query, for the server's cluster.
    await until(
      async () =>
        normalize(await editorText(page, '.graphiql-query-editor')).includes('cluster(id: "my-cluster")'),
      'the query editor',
    );
    const tabs = await page.evaluate<string | null>("localStorage.getItem('graphiql:tabState')");
    const state = JSON.parse(tabs ?? '{}') as { tabs?: { query: string }[] };
    expect(state.tabs?.map((t) => normalize(t.query))).toEqual([
      normalize(GUIDE_QUERY),
      normalize(GUIDE_SUBSCRIPTION),
    ]);

    const answered = page.waitForResponse(
      (r) =>
        r.url() === `${server.base}/graphql` &&
        r.request().method() === 'POST' &&
        r.request().postData()?.includes('totalGPUs') === true,
      { timeout: 30_000 },
    );
    await execute.click();
    const json = (await (await answered).json()) as {
      data: {
        cluster: {
          totalHosts: number;
          totalGPUs: number;
          hosts: { gpus: { status: { healthy: boolean } }[] }[];
        };
      };
    };
    expect(json.data.cluster.totalHosts).toBe(31);
    expect(json.data.cluster.totalGPUs).toBe(247);
    expect(json.data.cluster.hosts.flatMap((h) => h.gpus)).toHaveLength(247);
    // And the response editor shows it.
    await until(
      async () => (await editorText(page, '.result-window')).includes('"totalGPUs": 247'),
      'the result in the response editor',
    );
    expect(await editorText(page, '.result-window')).toContain('"totalHosts": 31');
    expect(errors).toEqual([]);
    // Offline: every request went to the server itself.
    expect(requests.length).toBeGreaterThan(3);
    expect(requests.filter((u) => !u.startsWith(server.base) && !u.startsWith('blob:'))).toEqual([]);
    await page.close();
  });

  it("runs the guide's subscription (second tab) over graphql-ws and shows pushed events", async () => {
    const { page, requests, errors, frames } = await openPage();
    await page.goto(`${server.base}/graphql`);
    await page.locator('.graphiql-query-editor .view-lines').first().waitFor({ timeout: 30_000 });
    await page.locator('.graphiql-tab-button').nth(1).click();
    await until(
      async () =>
        (await editorText(page, '.graphiql-query-editor')).includes(
          'telemetryUpdates(clusterId: "my-cluster")',
        ),
      'the subscription tab',
    );
    // On a loaded machine the editor may take the first click before it is ready to run: click
    // again while no subscribe message has gone out (a second click on a running one would stop it).
    const subscribed = () =>
      frames.received.some((f) => f.includes('"connection_ack"')) &&
      frames.sent.some((f) => f.includes('"subscribe"'));
    // A click taken before the tab switch settled runs the previous document over HTTP (400 for a
    // subscription there): the errors of such an abandoned attempt are not the page's.
    const errorsBefore = errors.length;
    for (let attempt = 1; ; attempt++) {
      const attemptStart = errors.length;
      await page.locator('.graphiql-execute-button').click();
      try {
        await until(subscribed, 'the graphql-ws subscription', 15_000);
        if (attempt > 1)
          errors.splice(
            errorsBefore,
            attemptStart - errorsBefore,
            ...errors.slice(errorsBefore, attemptStart).filter((e) => !/\b400\b|status of 400/.test(e)),
          );
        break;
      } catch (error) {
        if (attempt >= 3 || frames.sent.some((f) => f.includes('"subscribe"'))) throw error;
      }
    }
    const subscribe = JSON.parse(frames.sent.find((f) => f.includes('"subscribe"'))!) as {
      payload: { query: string };
    };
    expect(normalize(subscribe.payload.query)).toBe(normalize(GUIDE_SUBSCRIPTION));
    await server.replay();
    await until(
      async () => (await editorText(page, '.result-window')).includes('"eventType": "GPU_UPDATE"'),
      'a pushed event in the response editor',
      30_000,
    );
    const shown = await editorText(page, '.result-window');
    expect(shown).toContain('"gpuUtilization"');
    expect(shown).toContain('"hostId": "mtv5-dgx1-hgpu-');
    const events = frames.received.filter((f) => f.includes('"type":"next"'));
    expect(events.length).toBeGreaterThan(0);
    // The execute button stops a running subscription: graphql-ws `complete`.
    await page.locator('.graphiql-execute-button').click();
    await until(() => frames.sent.some((f) => f.includes('"complete"')), 'the complete message');
    expect(errors).toEqual([]);
    expect(
      requests.filter(
        (u) => !u.startsWith(server.base) && !u.startsWith(server.wsBase) && !u.startsWith('blob:'),
      ),
    ).toEqual([]);
    await page.close();
  }, 180_000);

  it('serves hashed assets with immutable caching, and 400 to a non-browser GET without a query', async () => {
    const html = await (await fetch(`${server.base}/graphql`, { headers: { accept: 'text/html' } })).text();
    const script = /src="(\/graphql\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(script).toBeDefined();
    const asset = await fetch(`${server.base}${script}`);
    expect(asset.status).toBe(200);
    expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
    // Sent as the build compressed it.
    const compressed = await fetch(`${server.base}${script}`, { headers: { 'accept-encoding': 'br' } });
    expect(compressed.headers.get('content-encoding')).toBe('br');
    expect(await compressed.text()).toBe(await asset.text());
    expect(html).toContain('<script id="graphiql-config" type="application/json">');
    const plain = await fetch(`${server.base}/graphql`, { headers: { accept: 'application/json' } });
    expect(plain.status).toBe(400);
    expect(((await plain.json()) as { errors: { message: string }[] }).errors[0]!.message).toContain('query');
  });
});

describe('GraphiQL with authentication on', () => {
  let authed: SampleServer;
  let token: string;
  beforeAll(async () => {
    authed = await startSampleServer({ AUTH: 'token' });
    token = (await tokenStoreOf(authed.runtime.store)!.create('graphiql', ['read'])).token;
  }, 120_000);
  afterAll(async () => authed?.close());

  it('serves the page without a token; the token typed into the headers editor goes with queries and connection_init', async () => {
    // Queries and assets: the page and its assets are public, a query is not.
    expect((await fetch(`${authed.base}/graphql?query=%7B__typename%7D`)).status).toBe(401);
    const { page, frames } = await openPage();
    const response = await page.goto(`${authed.base}/graphql`);
    expect(response?.status()).toBe(200);
    // The headers editor is open with an Authorization header to fill in.
    await until(
      async () => (await editorText(page, HEADERS_EDITOR)).includes('Bearer <token>'),
      'the headers editor',
    );
    await replaceEditorText(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${token}` }));

    const answered = page.waitForResponse(
      (r) => r.url() === `${authed.base}/graphql` && r.request().postData()?.includes('totalGPUs') === true,
      { timeout: 30_000 },
    );
    await page.locator('.graphiql-execute-button').click();
    const reply = await answered;
    expect(reply.status()).toBe(200);
    expect(reply.request().headers()['authorization']).toBe(`Bearer ${token}`);
    expect(
      ((await reply.json()) as { data: { cluster: { totalGPUs: number } } }).data.cluster.totalGPUs,
    ).toBe(247);

    // The schema, refused at load (no token yet), comes with the token too.
    const introspected = page.waitForResponse(
      (r) => r.url() === `${authed.base}/graphql` && r.request().postData()?.includes('__schema') === true,
      { timeout: 30_000 },
    );
    await page.locator('button[aria-label^="Re-fetch GraphQL schema"]').click();
    expect((await introspected).status()).toBe(200);

    await page.locator('.graphiql-tab-button').nth(1).click();
    await until(
      async () => (await editorText(page, '.graphiql-query-editor')).includes('telemetryUpdates'),
      'the subscription tab',
    );
    // Each tab has its own headers: type the token into this one's too.
    await replaceEditorText(page, HEADERS_EDITOR, JSON.stringify({ Authorization: `Bearer ${token}` }));
    await page.locator('.graphiql-execute-button').click();
    await until(() => frames.received.some((f) => f.includes('"connection_ack"')), 'connection_ack');
    const init = JSON.parse(frames.sent.find((f) => f.includes('"connection_init"'))!) as {
      payload: Record<string, string>;
    };
    expect(init.payload.Authorization).toBe(`Bearer ${token}`);
    await page.close();
  });
});

describe('GraphiQL not built', () => {
  it('answers a browser 503 WEB_NOT_BUILT saying to run npm run build', async () => {
    const config = loadConfig({}, { CLUSTER_ID: CLUSTER, LOG_LEVEL: 'silent' });
    const options = apiOptionsFromConfig(config, 'embedded');
    options.graphql = { ...options.graphql!, ideDir: '/nonexistent/graphiql' };
    const app = await buildApp(
      {
        coordination: server.runtime.coordination,
        store: server.runtime.store,
        logger: createLogger('silent'),
        metrics: createPipelineMetrics(),
        staleAfterMs: config.STALE_AFTER,
        readiness: {},
      },
      options,
    );
    try {
      const r = await app.inject({ method: 'GET', url: '/graphql', headers: { accept: 'text/html' } });
      expect(r.statusCode).toBe(503);
      const body = r.json<{ error: { code: string; message: string } }>();
      expect(body.error.code).toBe('WEB_NOT_BUILT');
      expect(body.error.message).toContain('npm run build');
    } finally {
      await app.close();
    }
  });
});
