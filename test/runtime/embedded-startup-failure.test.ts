/**
 * A failed start-up closes what it opened: `startEmbedded` on a data directory (the default store,
 * SQLite) whose API port is taken throws EADDRINUSE, and afterwards the directory is free again (its
 * lock released, the store closed), so a second start on it succeeds and finds the data the first one stored. The same
 * holds for a failure before the API exists (a rule file with an error).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { createLogger } from '../../src/util/logger.js';

const dir = mkdtempSync(join(tmpdir(), 'nexus-startup-failure-'));
const running: EmbeddedRuntime[] = [];

afterAll(async () => {
  for (const r of running) await r.close();
  rmSync(dir, { recursive: true, force: true });
});

const start = (dataDir: string, overrides: Record<string, unknown> = {}) =>
  startEmbedded({
    config: loadConfig(
      {},
      { DATA_DIR: dataDir, HOST: '127.0.0.1', PORT: 0, LOG_LEVEL: 'silent', CLUSTER_ID: 'c', ...overrides },
    ),
    logger: createLogger('silent'),
  });

describe('startEmbedded after a failed start-up', () => {
  it('releases the data directory when the API port is taken', async () => {
    const data = join(dir, 'port');
    const first = await start(data);
    const stored = (await first.ingest({ spec: bundledSamplePath() })).rows;
    expect(stored).toBe(2470);
    const port = Number(new URL(first.address!).port);
    await first.close();

    const holder = await start(join(dir, 'holder'));
    running.push(holder);
    const taken = Number(new URL(holder.address!).port);
    await expect(start(data, { PORT: taken })).rejects.toMatchObject({ code: 'EADDRINUSE' });

    // The directory is usable again: lock released, the store closed, the samples still there.
    const again = await start(data);
    running.push(again);
    expect(port).toBeGreaterThan(0);
    expect((await again.store.latestSamples()).length).toBe(2470);
  }, 120_000);

  it('releases it when a rule file has an error', async () => {
    const data = join(dir, 'rules');
    const rules = join(dir, 'broken.rules.yml');
    writeFileSync(rules, 'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up ==\n');
    await expect(start(data, { ALERT_RULES_FILES: rules })).rejects.toMatchObject({ code: 'CONFIG_INVALID' });
    const again = await start(data);
    running.push(again);
    expect(again.address).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
  }, 120_000);
});
