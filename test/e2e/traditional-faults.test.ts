/**
 * Fault injection on the traditional pipeline (streamer -> Redis -> collector -> PostgreSQL), with
 * 200,000 generated DCGM rows:
 * - the collector process is SIGKILLed several times while it holds claimed, unacked batches; the
 *   restarted (or a new) collector takes them back, and every row is stored exactly once;
 * - redis-server (appendonly yes, appendfsync always) is SIGKILLed and restarted during ingest; no
 *   batch whose enqueue Redis acknowledged is lost;
 * - and, for contrast, what a kill loses without the append-only file.
 * Correctness only: nothing here asserts on speed, and every wait has a generous deadline.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisQueue } from '../../src/adapters/redis/queue.js';
import { processingKey } from '../../src/adapters/redis/queue-scripts.js';
import { decodeBatch } from '../../src/domain/batch-codec.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import type { Queue } from '../../src/ports/queue.js';
import { runStreamer } from '../../src/streamer/streamer.js';
import { createLogger } from '../../src/util/logger.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { startRedis, type RedisHandle } from '../harness/redis.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { ALL_RAW_SAMPLES } from '../../src/storage/chunks.js';

const ROWS = 200_000;
const BATCH_SIZE = 250;
const TOPIC = 'telemetry';

let postgres: PostgresHarness;
let workDir: string;
let csv: string;
const redisServers: RedisHandle[] = [];
const clients: Redis[] = [];

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'nexus-faults-'));
  csv = join(workDir, 'dcgm-200k.csv');
  // 25 hosts x 8 GPUs x 10 metrics = 2,000 rows per scrape; 100 scrapes, every (series, time) distinct.
  const [pgHarness, written] = await Promise.all([
    startPostgres(),
    writeDcgmCsv(csv, { hosts: 25, gpusPerHost: 8, metrics: 10, rows: ROWS, durationMs: Infinity, seed: 6 }),
  ]);
  postgres = pgHarness;
  expect(written.rows).toBe(ROWS);
}, 180_000);

afterAll(async () => {
  killAll();
  for (const client of clients) client.disconnect();
  await Promise.all(redisServers.map((r) => r.stop()));
  await postgres?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

async function redisServer(appendonly: boolean): Promise<{ server: RedisHandle; client: Redis }> {
  const server = await startRedis({ appendonly });
  redisServers.push(server);
  // Fails fast while the server is down (the fault tests kill it), reconnects on its own.
  const client = new Redis(server.url, { maxRetriesPerRequest: 1, retryStrategy: () => 100 });
  client.on('error', () => undefined);
  clients.push(client);
  return { server, client };
}

/** Environment of the CLI processes of one scenario. */
function pipelineEnv(redisUrl: string, databaseUrl: string): Record<string, string> {
  return {
    REDIS_URL: redisUrl,
    REDIS_TOPICS: TOPIC,
    DATABASE_URL: databaseUrl,
    ETCD_ENDPOINTS: '',
    ENABLE_NEXUS: 'false',
    CLUSTER_ID: 'faults',
    LOG_LEVEL: 'warn',
    POLL_INTERVAL: '200ms',
    BATCH_SIZE: String(BATCH_SIZE),
    // A short queue keeps the streamer publishing while the collector is being killed.
    QUEUE_MAX_DEPTH: '40',
    WORKERS: '4',
    // Claims whose ack Redis refused during an outage come back after this (default 30 s).
    CLAIM_TTL: '10s',
  };
}

async function withDb<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

async function storedRows(db: pg.Client): Promise<number> {
  const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${ALL_RAW_SAMPLES} AS a`);
  return rows[0]!.n;
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
    await sleep(100);
  }
}

/** Items held by the Redis queue: ready, claimed or in a processing list (HLEN of the payload hash). */
const queueHeld = (client: Redis): Promise<number> => client.hlen(`${TOPIC}:items`);

/** Where the queue's items are, for failure messages. */
async function queueState(client: Redis): Promise<Record<string, unknown>> {
  const processing: Record<string, string[]> = {};
  for (const key of await client.keys(`${TOPIC}:processing:*`))
    processing[key] = await client.lrange(key, 0, -1);
  return {
    held: await client.hkeys(`${TOPIC}:items`),
    ready: await client.lrange(TOPIC, 0, -1),
    claims: await client.hgetall(`${TOPIC}:claims`),
    processing,
  };
}

/** The final check of a scenario: every row exactly once, every published batch committed once. */
async function expectExactlyOnce(db: pg.Client, batches: number): Promise<void> {
  const { rows } = await db.query<{ n: number; distinct_keys: number }>(
    `SELECT count(*)::int AS n, count(DISTINCT (series_id, ts))::int AS distinct_keys FROM ${ALL_RAW_SAMPLES} AS a`,
  );
  expect(rows[0]).toEqual({ n: ROWS, distinct_keys: ROWS });
  const ledger = await db.query<{ batches: number; samples: number }>(
    'SELECT count(*)::int AS batches, coalesce(sum(sample_count), 0)::int AS samples FROM batch_ledger',
  );
  expect(ledger.rows[0]).toEqual({ batches, samples: ROWS });
  const dead = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM dead_letters');
  expect(dead.rows[0]!.n).toBe(0);
}

describe('traditional pipeline under faults (200k generated rows)', () => {
  it('stores every row exactly once when the collector is SIGKILLed mid-batch several times', async () => {
    const { server, client } = await redisServer(true);
    const databaseUrl = await postgres.createDatabase('faults_collector');
    const env = pipelineEnv(server.url, databaseUrl);

    // The same id twice (the restart takes its own claims back at once), then new ids (the dead
    // consumer's claims come back when its liveness key lapses), then a last collector that drains.
    const killedIds = ['collector-a', 'collector-a', 'collector-b', 'collector-c'];
    const claimsAtKill: number[] = [];
    let streamer: CliProcess | undefined;

    await withDb(databaseUrl, async (db) => {
      for (const [i, id] of killedIds.entries()) {
        const collector = spawnCli(['collector', '--queue', 'redis'], { ...env, COLLECTOR_ID: id });
        await collector.waitFor(/consuming telemetry/, 60_000);
        // The first collector has applied the migrations: now the streamer can go.
        streamer ??= spawnCli(['streamer', csv, '--queue', 'redis'], { ...env, SERVICE_ID: 'streamer-1' });
        const before = await storedRows(db);
        // Kill once this collector has stored some batches and holds claimed, unacked ones.
        await waitUntil(
          `collector ${i + 1} (${id}) to make progress while holding claims`,
          async () =>
            (await storedRows(db)) >= before + 10 * BATCH_SIZE &&
            (await client.llen(processingKey(TOPIC, id))) > 0,
          90_000,
          async () => ({ stored: await storedRows(db), output: collector.output().slice(-2000) }),
        );
        collector.kill('SIGKILL');
        expect(await collector.exited).toBe('SIGKILL');
        // Batches the dead process had claimed and not acked (mid-batch): its processing list.
        claimsAtKill.push(await client.llen(processingKey(TOPIC, id)));
        expect(await storedRows(db)).toBeLessThan(ROWS);
      }
      expect(
        claimsAtKill.some((n) => n > 0),
        `claims at each kill: ${claimsAtKill.join(', ')}`,
      ).toBe(true);

      const last = spawnCli(['collector', '--queue', 'redis'], { ...env, COLLECTOR_ID: 'collector-d' });
      await last.waitFor(/consuming telemetry/, 60_000);
      const published = await streamer!.waitFor(/published [\d,]+ rows \(0 bad\) in \d+ batches/, 150_000);
      expect(await streamer!.exited).toBe(0);
      const [, rows, batches] = (
        /published ([\d,]+) rows \(0 bad\) in (\d+) batches/.exec(published) ?? []
      ).map((n) => Number(n.replace(/,/g, '')));
      expect(rows).toBe(ROWS);
      expect(batches).toBe(ROWS / BATCH_SIZE);

      await waitUntil(
        'the queue to drain and every row to be stored',
        async () => (await queueHeld(client)) === 0 && (await storedRows(db)) === ROWS,
        120_000,
        async () => ({ stored: await storedRows(db), queue: await queueState(client) }),
      );
      expect(await client.llen(TOPIC)).toBe(0);
      await expectExactlyOnce(db, batches!);

      last.kill('SIGTERM');
      expect(await last.exited).toBe(0);
    });
  }, 240_000);

  it('loses no acknowledged batch when redis-server (appendfsync always) is killed and restarted', async () => {
    const { server, client } = await redisServer(true);
    const databaseUrl = await postgres.createDatabase('faults_redis');
    const env = pipelineEnv(server.url, databaseUrl);
    const collector = spawnCli(['collector', '--queue', 'redis'], { ...env, COLLECTOR_ID: 'collector-1' });
    await collector.waitFor(/consuming telemetry/, 60_000);

    // The real streamer code in this process, on a queue that retries an enqueue Redis did not
    // acknowledge (same bytes, same batch id: a retry of a write that did land is deduplicated by
    // the collector's batch ledger). Batches Redis acknowledged are recorded: none may go missing.
    const redisQueue = await createRedisQueue({ topic: TOPIC, url: server.url, maxDepth: 40 });
    const acknowledged = new Set<string>();
    let failedEnqueues = 0;
    const retrying: Queue = {
      topic: redisQueue.topic,
      async enqueue(payload) {
        const deadline = Date.now() + 90_000;
        for (;;) {
          try {
            const id = await redisQueue.enqueue(payload);
            acknowledged.add(decodeBatch(payload).id);
            return id;
          } catch (error) {
            failedEnqueues += 1;
            if (Date.now() > deadline) throw error;
            await sleep(200);
          }
        }
      },
      claim: (consumerId, options) => redisQueue.claim(consumerId, options),
      ack: (item) => redisQueue.ack(item),
      release: (item) => redisQueue.release(item),
      depth: () => redisQueue.depth(),
      close: () => redisQueue.close(),
    };
    const streaming = runStreamer(
      { spec: csv },
      {
        queue: retrying,
        clusterId: 'faults',
        batchSize: BATCH_SIZE,
        flushIntervalMs: 1000,
        timestamps: 'original',
        logger: createLogger('silent'),
      },
    );
    streaming.catch(() => undefined);

    try {
      await withDb(databaseUrl, async (db) => {
        const heldAtKill: number[] = [];
        for (const fraction of [0.2, 0.55]) {
          await waitUntil(
            `${fraction * 100}% of the rows to be stored`,
            async () => (await storedRows(db)) >= fraction * ROWS,
            120_000,
            async () => ({ stored: await storedRows(db), output: collector.output().slice(-2000) }),
          );
          heldAtKill.push(await queueHeld(client).catch(() => -1));
          await server.kill();
          await sleep(1500);
          await server.restart();
        }
        // The kills happened while the queue held acknowledged, unconsumed batches.
        expect(
          heldAtKill.some((n) => n > 0),
          `items held at each kill: ${heldAtKill.join(', ')}`,
        ).toBe(true);

        const summary = await streaming;
        expect(summary.rows).toBe(ROWS);
        expect(summary.batches).toBe(ROWS / BATCH_SIZE);
        expect(acknowledged.size).toBe(summary.batches);

        // In-flight claims whose ack was refused during an outage come back after CLAIM_TTL (10 s here).
        await waitUntil(
          'the queue to drain and every row to be stored',
          async () => (await queueHeld(client)) === 0 && (await storedRows(db)) === ROWS,
          150_000,
          async () => ({ stored: await storedRows(db), failedEnqueues, queue: await queueState(client) }),
        );
        await expectExactlyOnce(db, summary.batches);
        const ledger = await db.query<{ batch_id: string }>('SELECT batch_id FROM batch_ledger');
        const committed = new Set(ledger.rows.map((r) => r.batch_id));
        expect([...acknowledged].filter((id) => !committed.has(id))).toEqual([]);
      });
    } finally {
      await redisQueue.close();
      collector.kill('SIGTERM');
      await collector.exited;
    }
  }, 300_000);

  it('keeps queued batches across a kill with appendonly, and loses them all without it', async () => {
    const held: Record<string, number> = {};
    for (const appendonly of [true, false]) {
      const { server } = await redisServer(appendonly);
      const queue = await createRedisQueue({ topic: TOPIC, url: server.url });
      for (let i = 0; i < 20; i++) await queue.enqueue(new TextEncoder().encode(`batch ${i}`));
      await queue.close();
      await server.kill();
      await server.restart();
      const after = await createRedisQueue({ topic: TOPIC, url: server.url });
      held[appendonly ? 'appendonly' : 'no appendonly'] = await after.depth();
      await after.close();
    }
    expect(held).toEqual({ appendonly: 20, 'no appendonly': 0 });
  }, 60_000);
});
