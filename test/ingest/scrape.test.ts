// The scrape source against stand-in exporters: what one scrape sends and yields, and how each way
// a target can fail (refused, error status, slow, too big, garbage) marks it down with its reason
// while the other targets go on; the loop keeps its rounds and stops promptly on abort.
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { hasCode } from '../../src/errors.js';
import {
  formatOf,
  SCRAPE_ACCEPT,
  ScrapeTargetBoard,
  scrapeOnce,
  scrapePhaseMs,
  scrapeTargets,
  type ScrapeResult,
} from '../../src/ingest/scrape.js';
import { refusedUrl, startStandin, type Standin } from '../support/dcgm-exporter-standin.js';

const BODY = [
  '# HELP DCGM_FI_DEV_GPU_TEMP GPU temperature (in C).',
  '# TYPE DCGM_FI_DEV_GPU_TEMP gauge',
  'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="h1"} 41',
  'DCGM_FI_DEV_GPU_TEMP{gpu="1",UUID="GPU-b",device="nvidia1",modelName="NVIDIA H100 80GB HBM3",Hostname="h1"} 43',
  '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).',
  '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
  'DCGM_FI_DEV_GPU_UTIL{gpu="0",UUID="GPU-a",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="h1"} 97',
  '',
].join('\n');

/** A body that barely compresses: 2,000 GPUs with random values (about 250 KiB). */
const NOISY = Array.from(
  { length: 2000 },
  (_, i) =>
    `DCGM_FI_DEV_GPU_TEMP{gpu="${i % 8}",UUID="GPU-${Math.random().toString(36).slice(2)}",device="nvidia${i % 8}",modelName="M",Hostname="h${i >> 3}"} ${Math.random()}\n`,
).join('');

const GARBAGE = '<html><body>502 Bad Gateway</body></html>\n{"not": "metrics"}\n';

const base = { clusterId: 'c', timeoutMs: 2000, bodyLimitBytes: 1024 * 1024 };

const standins: Standin[] = [];
async function standin(options: Parameters<typeof startStandin>[0] = {}): Promise<Standin> {
  const s = await startStandin({ body: BODY, ...options });
  standins.push(s);
  return s;
}
afterEach(async () => {
  await Promise.all(standins.splice(0).map((s) => s.close()));
});

describe('scrapeOnce', () => {
  it('sends Prometheus headers, decodes gzip, and stamps samples with the scrape start', async () => {
    const s = await standin({ gzip: true });
    const before = Date.now();
    const outcome = await scrapeOnce(s.url, base);
    expect(outcome).toMatchObject({ url: s.url, health: 'up', error: '', samples: 3, deadLetters: 0 });
    expect(s.requests[0]!.accept).toBe(SCRAPE_ACCEPT);
    expect(s.requests[0]!['accept-encoding']).toMatch(/gzip/);
    expect(outcome.startedMs).toBeGreaterThanOrEqual(before);
    const samples = outcome.rows.flatMap((r) => (r.ok ? [r.sample] : []));
    expect(samples.map((x) => [x.hostname, x.gpuId, x.metric, x.value])).toEqual([
      ['h1', '0', 'DCGM_FI_DEV_GPU_TEMP', 41],
      ['h1', '1', 'DCGM_FI_DEV_GPU_TEMP', 43],
      ['h1', '0', 'DCGM_FI_DEV_GPU_UTIL', 97],
    ]);
    for (const x of samples) {
      expect(x.timestampMs).toBe(outcome.startedMs);
      expect(x.clusterId).toBe('c');
    }
  });

  it("files samples without a Hostname label under the target URL's host", async () => {
    const s = await standin({
      body: 'DCGM_FI_DEV_GPU_TEMP{gpu="0",UUID="GPU-a",device="nvidia0",modelName="M"} 41\n',
    });
    const outcome = await scrapeOnce(s.url, base);
    expect(outcome.samples).toBe(1);
    expect(outcome.rows[0]!.ok && outcome.rows[0]!.sample.hostname).toBe('127.0.0.1');
  });

  it('marks a refused connection down with the reason', async () => {
    const url = await refusedUrl();
    const outcome = await scrapeOnce(url, base);
    expect(outcome).toMatchObject({ health: 'down', samples: 0, rows: [], stopped: false });
    expect(outcome.error).toMatch(/connection refused/);
  });

  it('marks an error status down', async () => {
    const s = await standin({ status: 503 });
    const outcome = await scrapeOnce(s.url, base);
    expect(outcome).toMatchObject({ health: 'down', rows: [] });
    expect(outcome.error).toMatch(/HTTP status 503/);
  });

  it('fails a scrape past its timeout, promptly', async () => {
    const s = await standin({ delayMs: 3000 });
    const started = Date.now();
    const outcome = await scrapeOnce(s.url, { ...base, timeoutMs: 200 });
    expect(Date.now() - started).toBeLessThan(1500);
    expect(outcome).toMatchObject({ health: 'down', rows: [], stopped: false });
    expect(outcome.error).toBe('scrape timed out after 0.2s');
  });

  it('fails a body that stalls halfway past the timeout, gzip or not, promptly', async () => {
    for (const gzip of [false, true]) {
      const s = await standin({ body: NOISY, gzip, stallAfterBytes: 20_000 });
      const started = Date.now();
      const outcome = await scrapeOnce(s.url, { ...base, timeoutMs: 300 });
      expect(Date.now() - started).toBeLessThan(2000);
      expect(outcome).toMatchObject({ health: 'down', rows: [], samples: 0 });
      expect(outcome.error).toBe('scrape timed out after 0.3s');
    }
  });

  it('stops a scrape halfway through its body when the run is stopped', async () => {
    const s = await standin({ body: NOISY, gzip: true, stallAfterBytes: 20_000 });
    const abort = new AbortController();
    setTimeout(() => abort.abort(), 200);
    const outcome = await scrapeOnce(s.url, { ...base, timeoutMs: 5000, signal: abort.signal });
    expect(outcome).toMatchObject({ stopped: true, rows: [] });
  });

  it('fails a body over the size limit (decoded bytes, gzip or not) and yields nothing', async () => {
    const big = BODY.repeat(200); // about 80 KiB
    for (const gzip of [false, true]) {
      const s = await standin({ body: big, gzip });
      const outcome = await scrapeOnce(s.url, { ...base, bodyLimitBytes: 16 * 1024 });
      expect(outcome).toMatchObject({ health: 'down', rows: [], samples: 0 });
      expect(outcome.error).toBe('body size limit exceeded: more than 16384 bytes');
    }
  });

  it('marks garbage down and dead-letters its lines naming the target', async () => {
    const s = await standin({ body: GARBAGE });
    const outcome = await scrapeOnce(s.url, base);
    expect(outcome.health).toBe('down');
    expect(outcome.samples).toBe(0);
    expect(outcome.deadLetters).toBeGreaterThan(0);
    expect(outcome.error).toMatch(/^no valid sample: \d+ line\(s\) refused \(first: line 1: /);
    for (const row of outcome.rows) expect(!row.ok && row.deadLetter.source).toBe(s.url);
  });

  it('picks the parser format from the Content-Type', () => {
    expect(formatOf('text/plain; version=0.0.4; charset=utf-8')).toBe('text');
    expect(formatOf('application/openmetrics-text; version=1.0.0; charset=utf-8')).toBe('openmetrics');
    expect(formatOf(null)).toBe('text');
    expect(formatOf('text/html')).toBe('text');
  });
});

describe('scrapeTargets', () => {
  it('scrapes every target each round; a bad target is down while the others go on', async () => {
    const good = await standin();
    const garbage = await standin({ body: GARBAGE });
    const refused = await refusedUrl();
    const targets = [good.url, refused, garbage.url];
    const board = new ScrapeTargetBoard(targets, 50, 40);
    expect(board.list().map((t) => t.health)).toEqual(['unknown', 'unknown', 'unknown']);
    const results: ScrapeResult[] = [];
    for await (const r of scrapeTargets({
      ...base,
      targets,
      intervalMs: 50,
      timeoutMs: 1000,
      board,
      rounds: 3,
    }))
      results.push(r);
    // The refused target yields no row and an empty presence each round; the good one 3 samples per
    // round and its GPUs; garbage its dead letters and an empty presence (it is down).
    const ofGood = results.filter((r) => r.source === good.url);
    expect(ofGood.map((r) => r.rows.length)).toEqual([3, 3, 3]);
    const goodGpus = ofGood[0]!.rows.flatMap((r) =>
      r.ok ? [{ hostname: r.sample.hostname, gpuId: r.sample.gpuId, uuid: r.sample.uuid }] : [],
    );
    expect(goodGpus.length).toBeGreaterThan(0);
    for (const r of ofGood) {
      expect(r.presence).toMatchObject({ target: good.url, clusterId: base.clusterId });
      expect(r.presence.gpus).toEqual([...new Map(goodGpus.map((g) => [JSON.stringify(g), g])).values()]);
    }
    const ofRefused = results.filter((r) => r.source === refused);
    expect(ofRefused.map((r) => [r.rows.length, r.presence.gpus.length])).toEqual([
      [0, 0],
      [0, 0],
      [0, 0],
    ]);
    const ofGarbage = results.filter((r) => r.source === garbage.url);
    expect(ofGarbage).toHaveLength(3);
    expect(ofGarbage.every((r) => r.rows.length > 0 && r.presence.gpus.length === 0)).toBe(true);
    const states = Object.fromEntries(board.list().map((t) => [t.url, t]));
    expect(states[good.url]).toMatchObject({ health: 'up', samples: 3, scrapes: 3, lastError: '' });
    expect(states[refused]).toMatchObject({ health: 'down', samples: 0, scrapes: 3 });
    expect(states[refused]!.lastError).toMatch(/connection refused/);
    expect(states[garbage.url]).toMatchObject({ health: 'down', samples: 0, scrapes: 3 });
    expect(Date.parse(states[good.url]!.lastScrape!)).toBeGreaterThan(0);
    expect(good.requests).toHaveLength(3);
  });

  it('spreads targets over the interval: first scrape at once, then each at its own phase of the clock', async () => {
    // The phase comes from the URL alone, within the interval, and differs between targets.
    const urls = Array.from({ length: 50 }, (_, i) => `http://node-${i}:9400/metrics`);
    const phases = urls.map((u) => scrapePhaseMs(u, 10_000));
    expect(urls.map((u) => scrapePhaseMs(u, 10_000))).toEqual(phases);
    expect(phases.every((p) => Number.isInteger(p) && p >= 0 && p < 10_000)).toBe(true);
    expect(new Set(phases.map((p) => Math.floor(p / 1000))).size).toBeGreaterThanOrEqual(6);

    const interval = 600;
    const times = new Map<string, number[]>();
    const targets: Standin[] = [];
    for (let i = 0; i < 3; i++) {
      const seen: number[] = [];
      const t = await standin({ body: () => (seen.push(Date.now()), BODY) });
      times.set(t.url, seen);
      targets.push(t);
    }
    const started = Date.now();
    for await (const _ of scrapeTargets({
      ...base,
      targets: targets.map((t) => t.url),
      intervalMs: interval,
      rounds: 3,
    }));
    for (const [url, [first, second, third]] of times) {
      const phase = scrapePhaseMs(url, interval);
      expect(first! - started).toBeLessThan(interval); // at once
      // Never early: the second at least half an interval after the first, on the phase; then one interval.
      // (`started` is before the loop's own start, so this tick is at or before the loop's.)
      expect(second! - started).toBeGreaterThanOrEqual(interval / 2);
      const from = started + interval / 2;
      const tick = from + ((phase - (from % interval) + interval) % interval);
      expect(second!).toBeGreaterThanOrEqual(tick - 1);
      expect(third!).toBeGreaterThanOrEqual(tick + interval - 1);
    }
  });

  it('stops promptly on abort, even while a scrape is in flight', async () => {
    const slow = await standin({ delayMs: 5000 });
    const good = await standin();
    const abort = new AbortController();
    const results: ScrapeResult[] = [];
    const started = Date.now();
    setTimeout(() => abort.abort(), 300);
    for await (const r of scrapeTargets({
      ...base,
      targets: [slow.url, good.url],
      intervalMs: 100,
      timeoutMs: 4000,
      signal: abort.signal,
    }))
      results.push(r);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(results.length).toBeGreaterThanOrEqual(1);
    expect(results.every((r) => r.source === good.url)).toBe(true);
  });
});

describe('scrape configuration', () => {
  it('has Prometheus-like defaults and parses the target list', () => {
    const config = loadConfig({
      SCRAPE_TARGETS: ' http://a:9400/metrics, https://b/metrics,,http://a:9400/metrics',
    });
    expect(config.SCRAPE_TARGETS).toEqual(['http://a:9400/metrics', 'https://b/metrics']);
    expect(config.SCRAPE_INTERVAL).toBe(10_000);
    expect(config.SCRAPE_TIMEOUT).toBe(5_000);
    expect(config.SCRAPE_BODY_LIMIT).toBe(32 * 1024 * 1024);
    expect(loadConfig({}).SCRAPE_TARGETS).toEqual([]);
  });

  it('refuses a timeout longer than the interval, and targets that are not http(s) URLs', () => {
    const refused = (env: Record<string, string>): string => {
      try {
        loadConfig(env);
      } catch (error) {
        expect(hasCode(error, 'CONFIG_INVALID')).toBe(true);
        return (error as Error).message;
      }
      throw new Error('accepted');
    };
    expect(refused({ SCRAPE_INTERVAL: '5s', SCRAPE_TIMEOUT: '6s' })).toMatch(/SCRAPE_TIMEOUT/);
    expect(refused({ SCRAPE_TARGETS: 'localhost:9400' })).toMatch(/SCRAPE_TARGETS/);
    expect(refused({ SCRAPE_TARGETS: 'ftp://x/metrics' })).toMatch(/not an http or https URL/);
    expect(loadConfig({ SCRAPE_INTERVAL: '5s', SCRAPE_TIMEOUT: '5s' }).SCRAPE_TIMEOUT).toBe(5000);
  });
});
