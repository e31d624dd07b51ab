/**
 * PostgreSQL crashing under a running collector: a `nexus-telemetry collector` child process
 * consumes a Redis backlog of 120,000 generated rows into PostgreSQL; mid-ingest the database is
 * stopped with `pg_ctl stop -m immediate` and restarted. The collector process never exits (same
 * PID, still running), logs the outage as retryable failures, resumes on its own, and the final
 * count is exact: every row once, in the samples and in the rollups. The database password never
 * appears in its output.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedisQueue } from '../../src/adapters/redis/queue.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import { runStreamer } from '../../src/streamer/streamer.js';
import { createLogger } from '../../src/util/logger.js';
import { type PostgresHarness, TEST_PG_PASSWORD, startPostgres } from '../harness/postgres.js';
import { type RedisHandle, startRedis } from '../harness/redis.js';
import { killAll, spawnCli } from '../support/cli-process.js';
import { ALL_RAW_SAMPLES } from '../../src/storage/chunks.js';
import { ALL_MINUTE_BUCKETS } from '../../src/storage/minute-chunks.js';

const ROWS = 120_000;
const TOPIC = 'telemetry';

let postgres: PostgresHarness;
let redis: RedisHandle;
let workDir: string;
let csv: string;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

beforeAll(async () => {
  workDir = mkdtempSync(join(tmpdir(), 'nexus-pg-restart-'));
  csv = join(workDir, 'dcgm.csv');
  const [pgHarness, redisHandle] = await Promise.all([
    startPostgres(),
    startRedis(),
    // 24 hosts x 8 GPUs x 10 metrics = 1,920 rows per 10 s scrape, every (series, time) distinct.
    writeDcgmCsv(csv, { hosts: 24, gpusPerHost: 8, rows: ROWS, durationMs: Infinity, seed: 11 }),
  ]);
  postgres = pgHarness;
  redis = redisHandle;
}, 180_000);

afterAll(async () => {
  killAll();
  await redis?.stop();
  await postgres?.stop();
  if (workDir) rmSync(workDir, { recursive: true, force: true });
});

/** One query on a fresh connection; undefined while the server is down. */
async function tryQuery<T extends object>(url: string, text: string): Promise<T | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return (await client.query<T>(text)).rows[0];
  } catch {
    return undefined;
  } finally {
    await client.end().catch(() => undefined);
  }
}

const countSamples = async (url: string): Promise<number | undefined> =>
  (await tryQuery<{ n: number }>(url, `SELECT count(*)::float8 AS n FROM ${ALL_RAW_SAMPLES} AS a`))?.n;

describe('PostgreSQL stopped (immediate) and restarted during ingest', () => {
  it(
    'the collector process survives, resumes, and stores every row exactly once',
    { timeout: 180_000 },
    async () => {
      const url = await postgres.createDatabase('restart');
      // The backlog first: 240 batches of 500 rows wait in Redis.
      const producer = await createRedisQueue({ topic: TOPIC, url: redis.url, maxDepth: 10_000 });
      const summary = await runStreamer(
        { spec: csv },
        {
          queue: producer,
          clusterId: 'restart',
          batchSize: 500,
          flushIntervalMs: 1000,
          timestamps: 'original',
          logger: createLogger('silent'),
        },
      );
      await producer.close();
      expect(summary.rows).toBe(ROWS);

      const collector = spawnCli(['collector'], {
        REDIS_URL: redis.url,
        REDIS_TOPICS: TOPIC,
        DATABASE_URL: url,
        ENABLE_NEXUS: 'false',
        CLUSTER_ID: 'restart',
        COLLECTOR_ID: 'collector-restart',
        WORKERS: '2',
        POLL_INTERVAL: '200ms',
        LOG_LEVEL: 'warn',
      });
      await collector.waitFor(/consuming/, 60_000);
      const pid = collector.child.pid;
      expect(pid).toBeGreaterThan(0);

      // Crash the database once ingest is well under way.
      let deadline = Date.now() + 90_000;
      for (;;) {
        const n = (await countSamples(url)) ?? 0;
        if (n >= ROWS / 5) break;
        if (Date.now() > deadline)
          throw new Error(`ingest did not start: ${n}\n${collector.output().slice(-3000)}`);
        await sleep(100);
      }
      const before = await countSamples(url);
      await postgres.stopImmediate();
      await sleep(3000); // down long enough for every worker to fail and back off
      expect(collector.child.exitCode).toBeNull();
      await postgres.start();

      deadline = Date.now() + 120_000;
      let n = 0;
      while ((n = (await countSamples(url)) ?? 0) < ROWS) {
        if (Date.now() > deadline)
          throw new Error(`ingest did not finish: ${n}\n${collector.output().slice(-3000)}`);
        if (collector.child.exitCode !== null)
          throw new Error(`collector exited:\n${collector.output().slice(-3000)}`);
        await sleep(250);
      }
      await sleep(1500); // anything still in flight would show up as a surplus now

      expect(before).toBeLessThan(ROWS);
      expect(collector.child.pid).toBe(pid);
      expect(collector.child.exitCode).toBeNull();
      expect(collector.child.signalCode).toBeNull();
      await tryQuery(url, 'SELECT nexus_flush_rollups()'); // what a reader of the rollups does first
      const totals = await tryQuery<{ raw: number; m: number; h: number; ledger: number }>(
        url,
        `SELECT (SELECT count(*) FROM ${ALL_RAW_SAMPLES} AS a)::float8 AS raw, (SELECT sum(count) FROM ${ALL_MINUTE_BUCKETS} AS mb)::float8 AS m,
              (SELECT sum(count) FROM samples_1h)::float8 AS h, (SELECT count(*) FROM batch_ledger)::float8 AS ledger`,
      );
      expect(totals).toEqual({ raw: ROWS, m: ROWS, h: ROWS, ledger: summary.batches });
      const output = collector.output();
      expect(output).toMatch(/BACKEND_UNAVAILABLE|batch failed; releasing it/);
      expect(output).not.toContain(TEST_PG_PASSWORD);

      collector.kill('SIGTERM');
      expect(await collector.exited).toBe(0);
    },
  );
});
