/**
 * Nexus mode under faults, with real processes (streamer, collectors) on a three-member etcd and
 * PostgreSQL, fed generated DCGM CSV:
 * - one collector SIGKILLed every few seconds (restarted under the same COLLECTOR_ID) while 200k
 *   rows flow: every row stored exactly once (stored = distinct = sent), and redeliveries happened;
 * - one of three etcd members (the raft leader) killed with SIGKILL during ingest: ingest goes on,
 *   nothing is lost;
 * - the maintenance leader SIGSTOPped past its election TTL, then SIGCONTed: the other collector
 *   leads, and the old leader never acts again: the fenced marker key is written by the new leader
 *   only. Whether the old leader's next pass reaches the store (and is rejected there) or its term
 *   watch reports the loss first is a race of two timers after SIGCONT; both are correct, so the
 *   test asserts the outcome and reports the path. The store-side rejection itself is asserted
 *   deterministically in test/coordination/election.test.ts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdCoordination, type EtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { createPostgresSampleStore } from '../../src/adapters/postgres/sample-store.js';
import { maintenanceMarkerKey, type MaintenanceMarker } from '../../src/collector/maintenance.js';
import { electionKey } from '../../src/coordination/election.js';
import { writeDcgmCsv } from '../../src/generate/generator.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { startPostgres, type PostgresHarness } from '../harness/postgres.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { ALL_RAW_SAMPLES } from '../../src/storage/chunks.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let etcd: EtcdHandle;
let postgres: PostgresHarness;
let coordination: EtcdCoordination;
let dir: string;
const everyProcess: CliProcess[] = [];

/** Environment of one scenario: its own cluster id (so its own queue keys) and its own database. */
async function scenario(name: string, extra: Record<string, string> = {}) {
  const url = await postgres.createDatabase(name);
  const store = await createPostgresSampleStore({ connectionString: url });
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const env: Record<string, string> = {
    ETCD_ENDPOINTS: etcd.endpointList,
    DATABASE_URL: url,
    CLUSTER_ID: name,
    LOG_LEVEL: 'info',
    POLL_INTERVAL: '200ms',
    WORKERS: '4',
    ...extra,
  };
  const spawn = (args: string[], more: Record<string, string> = {}): CliProcess => {
    const p = spawnCli(args, { ...env, ...more });
    everyProcess.push(p);
    return p;
  };
  const collector = (id: string): CliProcess => spawn(['collector'], { COLLECTOR_ID: id });
  /** Rows counted by natural identity (host, GPU, metric, time) rather than by stored key. */
  const distinct = async (): Promise<number> => {
    const { rows } = await client.query<{ n: string }>(
      `SELECT count(*) AS n FROM (
         SELECT DISTINCT s.cluster_id, s.hostname, s.gpu_id, s.metric, x.ts
         FROM ${ALL_RAW_SAMPLES} x JOIN series s ON s.id = x.series_id) d`,
    );
    return Number(rows[0]?.n ?? 0);
  };
  return {
    env,
    store: store as SampleStore,
    spawn,
    collector,
    distinct,
    async close() {
      await client.end();
      await store.close();
    },
  };
}

/** Queue items left for cluster `name`. */
async function queueDepth(name: string): Promise<number> {
  const res = await coordination.range(`/telemetry/queue/${name}/`, { keysOnly: true });
  return res.kvs.filter((kv) => kv.key.includes('/items/')).length;
}

async function until(what: string, timeoutMs: number, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

function count(text: string, pattern: RegExp): number {
  return text.match(new RegExp(pattern.source, 'g'))?.length ?? 0;
}

async function stopAll(processes: CliProcess[]): Promise<void> {
  for (const p of processes) p.kill('SIGTERM');
  await Promise.race([Promise.all(processes.map((p) => p.exited)), sleep(10_000)]);
  for (const p of processes) p.kill('SIGKILL');
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'nexus-faults-'));
  [etcd, postgres] = await Promise.all([startEtcd({ members: 3 }), startPostgres()]);
  coordination = createEtcdCoordination({ endpoints: etcd.endpointList });
  // Recent timestamps, so no retention pass of the leader touches them.
  const start = Date.now() - 2 * 3_600_000;
  await writeDcgmCsv(join(dir, 'chaos.csv'), {
    hosts: 8,
    gpusPerHost: 8,
    rows: 200_000,
    durationMs: 3_600_000,
    start,
    seed: 7,
  });
  await writeDcgmCsv(join(dir, 'member.csv'), {
    hosts: 8,
    gpusPerHost: 8,
    rows: 60_000,
    durationMs: 3_600_000,
    start,
    seed: 8,
  });
}, 180_000);

afterAll(async () => {
  killAll();
  await coordination?.close();
  await Promise.all([etcd?.stop(), postgres?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('nexus mode under faults (real processes, three etcd members, PostgreSQL)', () => {
  it('SIGKILL one collector every few seconds while 200k rows flow: every row stored exactly once, with redeliveries', async () => {
    const s = await scenario('chaos');
    const started = Date.now();
    const ids = ['collector-1', 'collector-2'];
    const live = new Map(ids.map((id) => [id, s.collector(id)]));
    const all = [...live.values()];
    try {
      await Promise.all([...live.values()].map((c) => c.waitFor(/consuming/)));
      const streamer = s.spawn(['streamer', join(dir, 'chaos.csv')], { SERVICE_ID: 'streamer-chaos' });
      all.push(streamer);
      let kills = 0;
      let killedWhileFlowing = 0;
      const progress: string[] = [];
      // Every few seconds SIGKILL a collector (alternating) and restart it at once under the same
      // id; the next kill comes 1 s after the restarted one is consuming again, until all is in
      // (200k rows flow in 9-25 s here: a longer pause left room for a single kill while they did).
      while ((await s.store.countSamples()) < 200_000) {
        if (Date.now() - started > 300_000) {
          throw new Error(`chaos ingest did not finish in time: ${progress.join(', ')}`);
        }
        await sleep(1_000);
        const id = ids[kills % 2]!;
        const victim = live.get(id)!;
        victim.kill('SIGKILL');
        await victim.exited;
        kills += 1;
        const stored = await s.store.countSamples();
        progress.push(`${((Date.now() - started) / 1000).toFixed(0)}s:${stored}`);
        if (stored > 0 && stored < 200_000) killedWhileFlowing += 1;
        const fresh = s.collector(id);
        live.set(id, fresh);
        all.push(fresh);
        await fresh.waitFor(/consuming/, 60_000);
      }
      await streamer.waitFor(/published 200,000 rows \(0 bad\)/, 60_000);
      await until('the queue to drain', 60_000, async () => (await queueDepth('chaos')) === 0);

      const stored = await s.store.countSamples();
      const distinct = await s.distinct();
      const logs = all.map((p) => p.output()).join('\n');
      const redelivered = count(logs, /"msg":"redelivered batch"/);
      console.log(
        `chaos: ${kills} SIGKILLs (${killedWhileFlowing} while rows were flowing), ${redelivered} redelivered batches, ` +
          `stored ${stored}, distinct ${distinct}, ${((Date.now() - started) / 1000).toFixed(0)} s; progress ${progress.join(', ')}`,
      );
      expect(stored).toBe(200_000);
      expect(distinct).toBe(200_000);
      expect(killedWhileFlowing).toBeGreaterThanOrEqual(2);
      expect(redelivered).toBeGreaterThan(0);
    } finally {
      await stopAll(all);
      await s.close();
    }
  }, 420_000);

  it('kill -9 of one of three etcd members (the raft leader) during ingest: ingest goes on, nothing is lost', async () => {
    const s = await scenario('member-kill');
    const collectors = [s.collector('collector-a'), s.collector('collector-b')];
    const all = [...collectors];
    let killed = -1;
    try {
      await Promise.all(collectors.map((c) => c.waitFor(/consuming/)));
      const streamer = s.spawn(['streamer', join(dir, 'member.csv')], { SERVICE_ID: 'streamer-member' });
      all.push(streamer);
      await until('ingest to be under way', 120_000, async () => (await s.store.countSamples()) >= 10_000);
      // The raft leader: killing it forces an election with proposals in flight.
      for (let i = 0; i < etcd.endpoints.length && killed < 0; i++) {
        const one = new Etcd3({ hosts: `http://${etcd.endpoints[i]}` });
        const status = await one.maintenance.status();
        if (status.leader === status.header.member_id) killed = i;
        one.close();
      }
      expect(killed).toBeGreaterThanOrEqual(0);
      const atKill = await s.store.countSamples();
      await etcd.killMember(killed);
      expect(etcd.isRunning(killed)).toBe(false);

      await streamer.waitFor(/published 60,000 rows \(0 bad\)/, 120_000);
      expect(await streamer.exited).toBe(0);
      await until('every row to be stored', 120_000, async () => (await s.store.countSamples()) >= 60_000);
      await until('the queue to drain', 60_000, async () => (await queueDepth('member-kill')) === 0);
      const stored = await s.store.countSamples();
      const distinct = await s.distinct();
      console.log(
        `member kill: leader m${killed} killed at ${atKill} stored rows; stored ${stored}, distinct ${distinct}`,
      );
      expect(atKill).toBeLessThan(60_000);
      expect(stored).toBe(60_000);
      expect(distinct).toBe(60_000);
      // Both collectors are still alive: the outage was absorbed, not fatal.
      for (const c of collectors) expect(c.child.exitCode).toBeNull();
    } finally {
      await stopAll(all);
      await s.close();
      if (killed >= 0) await etcd.restartMember(killed);
    }
  }, 240_000);

  it('SIGSTOP of the leader collector past its lease TTL: another collector leads, the old leader never acts again', async () => {
    const s = await scenario('fenced', {
      ELECTION_TTL: '2s',
      MAINTENANCE_INTERVAL: '250ms',
      COMPACTION_KEEP_REVISIONS: '20',
    });
    const byId = new Map([
      ['collector-x', s.collector('collector-x')],
      ['collector-y', s.collector('collector-y')],
    ]);
    const all = [...byId.values()];
    const key = electionKey('collector-maintenance-fenced');
    const markers: { by: string; revision: number }[] = [];
    const watcher = await coordination.watch(maintenanceMarkerKey('fenced'), {
      onEvent: (event) => {
        if (event.type === 'put') {
          markers.push({
            by: (JSON.parse(event.kv.value) as MaintenanceMarker).by,
            revision: event.revision,
          });
        }
      },
    });
    try {
      await Promise.all(all.map((c) => c.waitFor(/consuming/)));
      await until('a leader', 30_000, async () => (await coordination.get(key)) !== undefined);
      const first = (await coordination.get(key))!;
      const oldId = first.value;
      const newId = oldId === 'collector-x' ? 'collector-y' : 'collector-x';
      const old = byId.get(oldId)!;
      await until('the leader to act', 30_000, async () => markers.some((m) => m.by === oldId));

      old.kill('SIGSTOP');
      const stoppedAt = Date.now();
      let takeover = 0;
      try {
        await until('another collector to lead', 30_000, async () => {
          const now = await coordination.get(key);
          if (now && now.value === newId) takeover = now.createRevision;
          return takeover > 0;
        });
        await until('the new leader to act', 30_000, async () =>
          markers.some((m) => m.by === newId && m.revision > takeover),
        );
        // Stay stopped well past the TTL, so the old leader wakes with stale beliefs.
        await sleep(Math.max(0, 4_500 - (Date.now() - stoppedAt)));
      } finally {
        old.kill('SIGCONT');
      }
      await old.waitFor(/lost maintenance leadership/, 30_000);
      await sleep(1_500); // more passes of both processes
      const after = markers.filter((m) => m.revision > takeover);
      const rejections = old
        .output()
        .split('\n')
        .filter((l) => l.includes('"msg":"maintenance action rejected: no longer leader"'));
      console.log(
        `fencing: ${oldId} stopped ${((Date.now() - stoppedAt) / 1000).toFixed(1)} s; ${newId} took over at revision ${takeover}; ` +
          `${after.length} marker writes since, by ${[...new Set(after.map((m) => m.by))].join(', ')}; ` +
          `old leader: ${rejections.length} pass(es) rejected` +
          (rejections.length > 0
            ? ` (${(JSON.parse(rejections[0]!) as { detail?: string }).detail ?? '?'})`
            : ', its term watch reported the loss before its next pass'),
      );
      expect(after.length).toBeGreaterThan(0);
      expect(after.every((m) => m.by === newId)).toBe(true);
      expect((await coordination.get(key))?.value).toBe(newId);
      // The old leader is alive and campaigning again, as a follower.
      expect(old.child.exitCode).toBeNull();
    } finally {
      await watcher.cancel();
      await stopAll(all);
      await s.close();
    }
  }, 180_000);
});
