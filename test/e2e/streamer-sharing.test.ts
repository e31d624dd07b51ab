/**
 * Three `streamer` processes in nexus mode (one etcd member, the etcd queue) share 30 scrape
 * targets: 30 dcgm-exporter stand-ins, each with a host of its own, recording when it is scraped.
 * Before the kill each target is owned by one streamer (the owner keys in etcd, each streamer's
 * /health board) and scraped once per interval. SIGKILL one streamer: its targets are owned and
 * scraped again within the lease TTL plus one interval (plus slack for process scheduling), and from
 * then on every target is scraped in every interval. The measured handover is printed.
 */
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdCoordination, type EtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { rendezvousOwner, sharingPrefix } from '../../src/ingest/target-sharing.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { freePort } from '../harness/free-port.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';
import { startStandin, type Standin } from '../support/dcgm-exporter-standin.js';

const TARGET_COUNT = 30;
const INTERVAL_MS = 1_000;
const TTL_MS = 3_000;
/** Extra time allowed for process scheduling on a loaded machine (2 shared cores). */
const SLACK_MS = 2_000;
const CLUSTER = 'share-lab';
const IDS = ['streamer-1', 'streamer-2', 'streamer-3'];

let etcd: EtcdHandle;
let store: EtcdCoordination;
const standins: Standin[] = [];
/** Request times (ms since the epoch) of each stand-in, by target URL. */
const hits = new Map<string, number[]>();
const streamers = new Map<string, { process: CliProcess; health: string }>();
/** Streamers the test killed on purpose. */
const killed = new Set<string>();
const dirs: string[] = [];

/** One GPU of host `node-{i}`: four metrics, so every target is told apart by its Hostname. */
function exposition(i: number): string {
  const labels = `gpu="0",UUID="GPU-00000000-0000-0000-0000-${String(i).padStart(12, '0')}",device="nvidia0",modelName="NVIDIA H100 80GB HBM3",Hostname="node-${i}"`;
  return [
    '# TYPE DCGM_FI_DEV_GPU_TEMP gauge',
    `DCGM_FI_DEV_GPU_TEMP{${labels}} ${40 + (i % 20)}`,
    '# TYPE DCGM_FI_DEV_POWER_USAGE gauge',
    `DCGM_FI_DEV_POWER_USAGE{${labels}} ${300 + i}`,
    '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
    `DCGM_FI_DEV_GPU_UTIL{${labels}} ${i}`,
    '# TYPE DCGM_FI_DEV_SM_CLOCK gauge',
    `DCGM_FI_DEV_SM_CLOCK{${labels}} 1980`,
    '',
  ].join('\n');
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** What each streamer printed last, for a failure message. */
function streamerOutput(): string {
  return [...streamers]
    .map(
      ([id, s]) =>
        `--- ${id} (exit ${s.process.child.exitCode ?? s.process.child.signalCode ?? 'running'}):\n${s.process.output().slice(-1500)}`,
    )
    .join('\n');
}

/**
 * Poll `check` until true; fails after `timeoutMs`, or at once when a streamer that should run has
 * exited (named, with every streamer's last output).
 */
async function until(check: () => Promise<boolean>, what: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    const gone = [...streamers].find(
      ([id, s]) =>
        !killed.has(id) && (s.process.child.exitCode !== null || s.process.child.signalCode !== null),
    );
    if (gone) throw new Error(`${gone[0]} exited while waiting for: ${what}\n${streamerOutput()}`);
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms: ${what}\n${streamerOutput()}`);
    await sleep(50);
  }
}

/** Owner keys in etcd: target URL -> owning streamer. */
async function owners(cluster = CLUSTER): Promise<Map<string, string>> {
  const { kvs } = await store.range(`${sharingPrefix(cluster)}owners/`);
  return new Map(
    kvs.map((kv) => {
      const v = JSON.parse(kv.value) as { url: string; owner: string };
      return [v.url, v.owner];
    }),
  );
}

interface BoardTarget {
  url: string;
  health: string;
  scrapes: number;
}

/** The targets on streamer `id`'s board (its /health), by URL. */
async function board(id: string): Promise<Map<string, BoardTarget>> {
  const response = await fetch(`${streamers.get(id)!.health}/health`);
  const body = (await response.json()) as { id: string; targets: BoardTarget[] };
  expect(body.id).toBe(id);
  return new Map(body.targets.map((t) => [t.url, t]));
}

const sameMap = (a: Map<string, string>, b: Map<string, string>): boolean =>
  a.size === b.size && [...a].every(([k, v]) => b.get(k) === v);

/** Hits of `url` in [from, to). */
const hitsIn = (url: string, from: number, to: number): number[] =>
  hits.get(url)!.filter((t) => t >= from && t < to);

/** The longest time without a scrape of `url` in [from, to] (the edges count as scrapes' bounds). */
function longestGap(url: string, from: number, to: number): number {
  const times = [from, ...hitsIn(url, from, to), to];
  let longest = 0;
  for (let i = 1; i < times.length; i++) longest = Math.max(longest, times[i]! - times[i - 1]!);
  return longest;
}

beforeAll(async () => {
  etcd = await startEtcd();
  store = createEtcdCoordination({ endpoints: etcd.endpoints });
  for (let i = 0; i < TARGET_COUNT; i++) {
    const times: number[] = [];
    const body = exposition(i);
    const standin = await startStandin({
      body: () => {
        times.push(Date.now());
        return body;
      },
    });
    standins.push(standin);
    hits.set(standin.url, times);
  }
}, 60_000);

afterAll(async () => {
  for (const { process } of streamers.values()) process.kill('SIGTERM');
  await Promise.race([Promise.all([...streamers.values()].map((s) => s.process.exited)), sleep(10_000)]);
  killAll();
  await store?.close();
  await Promise.all(standins.map((s) => s.close()));
  await etcd?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('streamers share scrape targets through etcd', () => {
  it('three streamers split 30 targets; after a SIGKILL the others take its targets within TTL + one interval', async () => {
    const targets = standins.map((s) => s.url);
    const env = {
      ETCD_ENDPOINTS: etcd.endpointList,
      ENABLE_NEXUS: 'true',
      REDIS_URL: '',
      CLUSTER_ID: CLUSTER,
      SCRAPE_LEASE_TTL: `${TTL_MS}ms`,
      // Nobody consumes the queue here: let it hold every scrape instead of holding the scrapers back.
      QUEUE_MAX_DEPTH: '100000',
      HOST: '127.0.0.1',
      LOG_LEVEL: 'info',
    };
    const args = [
      'streamer',
      ...targets.flatMap((url) => ['--scrape', url]),
      '--scrape-interval',
      `${INTERVAL_MS}ms`,
      '--scrape-timeout',
      `${INTERVAL_MS}ms`,
    ];
    for (const id of IDS) {
      const port = await freePort();
      const process = spawnCli(args, { ...env, SERVICE_ID: id, METRICS_PORT: String(port) });
      streamers.set(id, { process, health: `http://127.0.0.1:${port}` });
    }

    // 1. Settled: the owner keys are what rendezvous hashing over the three gives, and each board
    //    lists exactly its streamer's share.
    const three = new Map(targets.map((url) => [url, rendezvousOwner(url, IDS)!]));
    const shareOf = (assignment: Map<string, string>, id: string): string[] =>
      targets.filter((url) => assignment.get(url) === id);
    for (const id of IDS) expect(shareOf(three, id).length).toBeGreaterThan(0);
    await until(
      async () => {
        if (!sameMap(await owners(), three)) return false;
        for (const id of IDS) {
          const listed = await board(id).catch(() => new Map<string, BoardTarget>());
          if ([...listed.keys()].sort().join() !== shareOf(three, id).sort().join()) return false;
        }
        return true;
      },
      'three streamers own the targets as rendezvous hashing says',
      90_000,
    );
    for (const id of IDS) {
      await streamers
        .get(id)!
        .process.waitFor(new RegExp(`now scraping ${shareOf(three, id).length} of ${TARGET_COUNT} targets`));
    }

    // 2. Before the kill: each target is scraped by its owner only, once per interval.
    await sleep(2 * INTERVAL_MS);
    const before = new Map(await Promise.all(IDS.map(async (id) => [id, await board(id)] as const)));
    const steadyFrom = Date.now();
    await sleep(5 * INTERVAL_MS);
    const steadyTo = Date.now();
    const after = new Map(await Promise.all(IDS.map(async (id) => [id, await board(id)] as const)));
    for (const url of targets) {
      const owner = three.get(url)!;
      for (const id of IDS) {
        // Only the owner's board has the target, and its scrape count went up.
        expect(after.get(id)!.has(url), `${url} on ${id}`).toBe(id === owner);
      }
      const scrapes = after.get(owner)!.get(url)!.scrapes - before.get(owner)!.get(url)!.scrapes;
      expect(scrapes, url).toBeGreaterThanOrEqual(3);
      const seen = hitsIn(url, steadyFrom, steadyTo).length;
      // One scraper: about 5 scrapes in 5 intervals; two would make about 10.
      expect(seen, url).toBeGreaterThanOrEqual(3);
      expect(seen, url).toBeLessThanOrEqual(6);
      expect(after.get(owner)!.get(url)!.health).toBe('up');
    }

    // 3. SIGKILL the streamer with the most targets: no revoke, its lease has to expire.
    const VICTIM = [...IDS].sort((a, b) => shareOf(three, b).length - shareOf(three, a).length)[0]!;
    const orphaned = shareOf(three, VICTIM);
    const survivors = IDS.filter((id) => id !== VICTIM);
    const two = new Map(targets.map((url) => [url, rendezvousOwner(url, survivors)!]));
    const killedAt = Date.now();
    killed.add(VICTIM);
    streamers.get(VICTIM)!.process.kill('SIGKILL');
    expect(await streamers.get(VICTIM)!.process.exited).toBe('SIGKILL');
    await until(async () => sameMap(await owners(), two), 'the survivors own every target', 30_000);
    const ownedAgainMs = Date.now() - killedAt;
    // The orphaned targets are scraped again.
    await until(
      async () => orphaned.every((url) => hitsIn(url, killedAt, Number.POSITIVE_INFINITY).length > 0),
      'the orphaned targets scraped again',
      30_000,
    );
    const rescrapedMs = Math.max(...orphaned.map((url) => hitsIn(url, killedAt, Infinity)[0]! - killedAt));

    // 4. From then on, every target is scraped in every interval, by one streamer.
    await sleep(5 * INTERVAL_MS);
    const endAt = Date.now();
    // The longest time an orphaned target went unscraped, across the kill.
    const unscrapedMs = Math.max(
      ...orphaned.map((url) => {
        const last = hits
          .get(url)!
          .filter((t) => t < killedAt)
          .at(-1)!;
        return hitsIn(url, killedAt, endAt)[0]! - last;
      }),
    );
    const takenOver = killedAt + rescrapedMs;
    const gapsAfter = targets.map((url) => longestGap(url, takenOver + INTERVAL_MS, endAt));
    const boards = new Map(await Promise.all(survivors.map(async (id) => [id, await board(id)] as const)));
    console.log(
      `streamer sharing: shares ${IDS.map((id) => shareOf(three, id).length).join('/')}; ${orphaned.length} targets of the killed streamer owned again after ${ownedAgainMs} ms, ` +
        `all scraped again ${rescrapedMs} ms after the SIGKILL; longest unscraped time ${unscrapedMs} ms ` +
        `(lease TTL ${TTL_MS} ms + interval ${INTERVAL_MS} ms = ${TTL_MS + INTERVAL_MS} ms); ` +
        `longest gap afterwards ${Math.max(...gapsAfter)} ms`,
    );
    expect(ownedAgainMs).toBeLessThanOrEqual(TTL_MS + INTERVAL_MS + SLACK_MS);
    expect(rescrapedMs).toBeLessThanOrEqual(TTL_MS + INTERVAL_MS + SLACK_MS);
    expect(unscrapedMs).toBeLessThanOrEqual(TTL_MS + INTERVAL_MS + SLACK_MS);
    for (const [i, url] of targets.entries()) {
      expect(gapsAfter[i], url).toBeLessThanOrEqual(INTERVAL_MS + SLACK_MS / 2);
      const owner = two.get(url)!;
      for (const id of survivors) expect(boards.get(id)!.has(url), `${url} on ${id}`).toBe(id === owner);
    }
    // Targets that were not orphaned kept their owner (rendezvous hashing moves only what must move).
    for (const url of targets) if (!orphaned.includes(url)) expect(two.get(url)).toBe(three.get(url));

    // SIGTERM: a survivor leaves cleanly (its lease revoked at once).
    const leaver = streamers.get(survivors[0]!)!.process;
    killed.add(survivors[0]!);
    leaver.kill('SIGTERM');
    expect(await leaver.exited).toBe(0);
    const one = new Map(targets.map((url) => [url, survivors[1]!]));
    await until(async () => sameMap(await owners(), one), 'the last streamer owns every target', 10_000);
  }, 180_000);

  it('--targets-file: a reloaded file is shared out again (released, claimed), each board follows its share', async () => {
    const cluster = 'share-file-lab';
    const dir = mkdtempSync(join(tmpdir(), 'nexus-sharing-targets-'));
    dirs.push(dir);
    const file = join(dir, 'targets.json');
    const write = (urls: string[]): void => {
      // Replace the file in one rename, as a ConfigMap update does.
      writeFileSync(`${file}.tmp`, JSON.stringify([{ targets: urls.map((u) => new URL(u).host) }]));
      renameSync(`${file}.tmp`, file);
    };
    const all = standins.map((s) => s.url);
    const first = all.slice(0, 8);
    const second = all.slice(4, 14);
    write(first);
    const ids = ['file-streamer-a', 'file-streamer-b'];
    const running: { id: string; process: CliProcess; health: string }[] = [];
    for (const id of ids) {
      const port = await freePort();
      const process = spawnCli(
        ['streamer', '--targets-file', file, '--scrape-interval', '1s', '--scrape-timeout', '1s'],
        {
          ETCD_ENDPOINTS: etcd.endpointList,
          ENABLE_NEXUS: 'true',
          REDIS_URL: '',
          CLUSTER_ID: cluster,
          SERVICE_ID: id,
          SCRAPE_LEASE_TTL: '3s',
          QUEUE_MAX_DEPTH: '100000',
          HOST: '127.0.0.1',
          METRICS_PORT: String(port),
          LOG_LEVEL: 'info',
        },
      );
      running.push({ id, process, health: `http://127.0.0.1:${port}` });
      streamers.set(id, { process, health: `http://127.0.0.1:${port}` });
    }
    const settled = async (urls: string[]): Promise<void> => {
      const want = new Map(urls.map((url) => [url, rendezvousOwner(url, ids)!]));
      await until(
        async () => {
          for (const { id, process } of running) {
            if (process.child.exitCode !== null)
              throw new Error(`${id} exited:\n${process.output().slice(-3000)}`);
          }
          if (!sameMap(await owners(cluster), want)) return false;
          for (const id of ids) {
            const listed = await board(id).catch(() => new Map<string, BoardTarget>());
            const share = urls.filter((url) => want.get(url) === id);
            if ([...listed.keys()].sort().join() !== share.sort().join()) return false;
          }
          return true;
        },
        `the two streamers share ${urls.length} targets`,
        90_000,
      );
    };
    await settled(first).catch(async (error: Error) => {
      const boards = await Promise.all(
        ids.map((id) =>
          board(id)
            .then((b) => [...b.keys()])
            .catch(String),
        ),
      );
      throw new Error(
        `${error.message}\nowners: ${JSON.stringify([...(await owners(cluster))])}\nboards: ${JSON.stringify(boards)}\n${running.map((r) => r.process.output().slice(-3000)).join('\n----\n')}`,
      );
    });
    write(second);
    await settled(second);
    // Nothing of the first cluster's group was touched.
    expect((await owners(cluster)).size).toBe(second.length);
    for (const { process } of running) {
      process.kill('SIGTERM');
      expect(await process.exited).toBe(0);
    }
    expect((await owners(cluster)).size).toBe(0);
  }, 180_000);
});
