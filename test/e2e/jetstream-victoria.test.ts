/**
 * Scale-out backends as separate processes: a streamer, two collectors and the API, each its own OS
 * process, on a shared queue and the remote-write sample store (samples in VictoriaMetrics, ledger
 * and dead letters in PostgreSQL), traditional mode (the API derives the hierarchy from the store).
 * - The bundled sample (2,470 rows): the API answers exactly as embedded mode does.
 * - 200,000 generated rows with one collector SIGKILLed while it works: every row is stored once.
 *   VictoriaMetrics runs without dedup here, so a sample written twice would be counted twice.
 * Correctness only: nothing asserts on speed, and every wait has a generous deadline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RemoteTsdbClient } from '../../src/adapters/victoria/client.js';
import { loadConfig } from '../../src/config/config.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { bundledSamplePath } from '../../src/runtime/bundled-sample.js';
import { startEmbedded } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { freePort } from '../harness/free-port.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { startNatsCluster, type NatsHandle } from '../harness/nats.js';
import { startVictoriaMetrics, type VictoriaHandle } from '../harness/victoria-metrics.js';
import { apiSnapshot } from '../support/api-snapshot.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';

/** The queue kind the processes share: a three-node JetStream cluster, stream replicas 3. */
const QUEUE = 'nats';
const ROWS = 200_000;
const BATCH_SIZE = 250;

let postgres: PostgresHarness;
let workDir: string;
let csv: string;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'nexus-vm-e2e-'));
  csv = join(workDir, 'dcgm-200k.csv');
  // 25 hosts x 8 GPUs x 10 metrics = 2,000 rows per scrape; 100 scrapes, every (series, time) distinct.
  const [p, written] = await Promise.all([
    startPostgres(),
    writeDcgmCsv(csv, { hosts: 25, gpusPerHost: 8, metrics: 10, rows: ROWS, durationMs: Infinity, seed: 21 }),
  ]);
  postgres = p;
  expect(written.rows).toBe(ROWS);
}, 180_000);

afterAll(async () => {
  killAll();
  await postgres?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** One pipeline's backends: a fresh three-node JetStream cluster, VictoriaMetrics and ledger database. */
async function pipeline(
  name: string,
  dedup: boolean,
): Promise<{
  vm: VictoriaHandle;
  nats: NatsHandle;
  env: Record<string, string>;
  databaseUrl: string;
}> {
  const [vm, nats, databaseUrl] = await Promise.all([
    startVictoriaMetrics({ dedup }),
    startNatsCluster({ nodes: 3 }),
    postgres.createDatabase(name),
  ]);
  const env = {
    NATS_URL: nats.url,
    NATS_STREAM_REPLICAS: '3',
    REMOTE_WRITE_URL: vm.writeUrl,
    DATABASE_URL: databaseUrl,
    ETCD_ENDPOINTS: '',
    ENABLE_NEXUS: 'false',
    CLUSTER_ID: 'dgx-lab',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'warn',
    POLL_INTERVAL: '200ms',
  };
  return { vm, nats, env, databaseUrl };
}

/** Every sample VictoriaMetrics holds: the total, and the distinct (series, time) keys. */
async function exported(vm: VictoriaHandle): Promise<{ stored: number; distinct: number }> {
  const client = new RemoteTsdbClient({ writeUrl: vm.writeUrl, readUrl: vm.url });
  const all = await client.export('{__name__!=""}', 86_400_000, Date.now() + 86_400_000);
  const keys = new Set<string>();
  let stored = 0;
  for (const s of all) {
    const series = JSON.stringify(Object.entries(s.metric).sort());
    for (const t of s.timestamps) keys.add(`${series}@${t}`);
    stored += s.timestamps.length;
  }
  return { stored, distinct: keys.size };
}

async function ledgerOf(databaseUrl: string): Promise<{ batches: number; dead: number }> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ batches: number; dead: number }>(
      'SELECT (SELECT count(*)::int FROM batch_ledger) AS batches, (SELECT count(*)::int FROM dead_letters) AS dead',
    );
    return rows[0]!;
  } finally {
    await client.end();
  }
}

/** Wait until `predicate` holds, polling; throws `what` with the last state after `timeoutMs`. */
async function waitUntil(
  what: string,
  predicate: () => Promise<boolean>,
  timeoutMs: number,
  state: () => Promise<unknown> = async () => '',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await predicate().catch(() => false)) return;
    if (Date.now() > deadline)
      throw new Error(`${what} within ${timeoutMs} ms: ${JSON.stringify(await state())}`);
    await sleep(250);
  }
}

async function stop(processes: CliProcess[]): Promise<void> {
  for (const p of processes) p.kill('SIGTERM');
  await Promise.all(processes.map((p) => p.exited));
}

describe(`separate processes on the ${QUEUE} queue and VictoriaMetrics (+ PostgreSQL ledger)`, () => {
  it('ingest the bundled sample and answer the REST API exactly as embedded mode does', async () => {
    const { vm, nats, env, databaseUrl } = await pipeline('vm_sample', true);
    const port = await freePort();
    const collectors = ['collector-1', 'collector-2'].map((id) =>
      spawnCli(['collector', '--queue', QUEUE], { ...env, COLLECTOR_ID: id }),
    );
    const embedded = await startEmbedded({
      config: loadConfig({}, { CLUSTER_ID: 'dgx-lab', MEMORY: true, LOG_LEVEL: 'silent' }),
      logger: createLogger('silent'),
      listen: false,
    });
    let api: CliProcess | undefined;
    try {
      await Promise.all(collectors.map((c) => c.waitFor(/consuming/, 90_000)));
      const streamer = spawnCli(['streamer', bundledSamplePath(), '--queue', QUEUE], env);
      await streamer.waitFor(/published 2,470 rows \(0 bad\)/, 90_000);
      expect(await streamer.exited).toBe(0);
      await waitUntil(
        'all 2,470 rows in VictoriaMetrics',
        async () => (await exported(vm)).stored === 2470,
        60_000,
      );
      expect(await exported(vm)).toEqual({ stored: 2470, distinct: 2470 });
      expect((await ledgerOf(databaseUrl)).dead).toBe(0);

      // The API starts once everything is stored: its hierarchy mirror reads the store every 5 s
      // and, as with PostgreSQL, takes a GPU's older samples that land later only on its next change.
      api = spawnCli(['api', '--traditional'], { ...env, PORT: String(port), SERVICE_ID: 'api-1' });
      await api.waitFor(/listening on/, 90_000);
      const base = `http://127.0.0.1:${port}`;
      await embedded.ingest({ spec: bundledSamplePath() });
      const fromEmbedded = await apiSnapshot(
        async (url) => (await embedded.app.inject(url)).json(),
        'dgx-lab',
      );
      const fromProcesses = await apiSnapshot(
        async (url) => (await fetch(`${base}${url}`)).json(),
        'dgx-lab',
      );
      expect(fromProcesses.cluster).toMatchObject({
        cluster_id: 'dgx-lab',
        metadata: { total_hosts: 31, total_gpus: 247 },
      });
      // Health messages count the seconds since the newest sample at the time of asking, and the two
      // snapshots are taken seconds apart: those counts are left out.
      const timeless = (snapshot: unknown): unknown =>
        JSON.parse(JSON.stringify(snapshot).replace(/no sample for \d+ s/g, 'no sample for N s'));
      expect(timeless(fromProcesses)).toEqual(timeless(fromEmbedded));
    } finally {
      await embedded.close();
      await stop(api === undefined ? collectors : [...collectors, api]);
      await Promise.all([vm.stop(), nats.stop()]);
    }
  }, 240_000);

  // Behind NEXUS_LONG_TESTS=1 (minutes of CPU; `npm run test:long`). Issue 21: a fresh-clone CI run
  // once stored 799 of 800 batches here. The cause was the stream's own limit (max_msgs with discard
  // new), which on nats-server 2.9.10 let a replica refuse a message the leader had confirmed, so the
  // consumer leader on that replica never delivered it; the adapter now bounds depth itself
  // (docs/scaling.md). It stays out of `npm test` for CI time, not for a known defect.
  it.skipIf(process.env.NEXUS_LONG_TESTS !== '1')(
    'stores every one of 200,000 rows exactly once when a collector is SIGKILLed mid-run (NEXUS_LONG_TESTS=1)',
    async () => {
      const { vm, nats, env, databaseUrl } = await pipeline('vm_faults', false);
      const queueEnv = { ...env, BATCH_SIZE: String(BATCH_SIZE), QUEUE_MAX_DEPTH: '40', WORKERS: '4' };
      const survivor = spawnCli(['collector', '--queue', QUEUE], {
        ...queueEnv,
        COLLECTOR_ID: 'collector-1',
      });
      const victim = spawnCli(['collector', '--queue', QUEUE], { ...queueEnv, COLLECTOR_ID: 'collector-2' });
      const processes = [survivor, victim];
      try {
        await Promise.all([survivor.waitFor(/consuming/, 90_000), victim.waitFor(/consuming/, 90_000)]);
        const streamer = spawnCli(['streamer', csv, '--queue', QUEUE], {
          ...queueEnv,
          SERVICE_ID: 'streamer-1',
        });
        processes.push(streamer);
        // Kill one collector once a tenth of the rows are stored (it is working on batches then).
        await waitUntil(
          'a tenth of the rows to be stored',
          async () => (await ledgerOf(databaseUrl)).batches >= 80,
          180_000,
        );
        victim.kill('SIGKILL');
        expect(await victim.exited).toBe('SIGKILL');
        const atKill = await ledgerOf(databaseUrl);
        expect(atKill.batches).toBeLessThan(ROWS / BATCH_SIZE);

        const published = await streamer.waitFor(/published [\d,]+ rows \(0 bad\) in \d+ batches/, 300_000);
        expect(await streamer.exited).toBe(0);
        const [, rows, batches] = (
          /published ([\d,]+) rows \(0 bad\) in (\d+) batches/.exec(published) ?? []
        ).map((n) => Number(n.replace(/,/g, '')));
        expect(rows).toBe(ROWS);
        await waitUntil(
          'every batch in the ledger',
          async () => (await ledgerOf(databaseUrl)).batches === batches,
          300_000,
          async () => ({ ledger: await ledgerOf(databaseUrl), output: survivor.output().slice(-2000) }),
        );
        expect(await exported(vm)).toEqual({ stored: ROWS, distinct: ROWS });
        expect(await ledgerOf(databaseUrl)).toEqual({ batches, dead: 0 });
      } finally {
        await stop(processes);
        await Promise.all([vm.stop(), nats.stop()]);
      }
    },
    600_000,
  );
});
