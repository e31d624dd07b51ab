/**
 * Cross-cluster state sync with real processes: two source etcds (clusters "east" and "west", as
 * their collectors would write them) mirrored one way into one shared target etcd by two
 * `nexus-telemetry sync` processes. The target ends equal to each source's cluster tree (puts and
 * deletes, a prefix-alike cluster left out), every mirrored change carries the checkpoint in the
 * same txn, a restarted sync resumes from the checkpoint, a sync SIGSTOPped across a compaction of
 * its source re-lists and ends equal, and an API on the target lists both clusters.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEtcdCoordination, type EtcdCoordination } from '../../src/adapters/etcd/coordination.js';
import { createPgliteSampleStore, type PgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { buildApp } from '../../src/api/app.js';
import type { Batch, Sample } from '../../src/domain/types.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import { clusterKey, gpuKey, hostKey } from '../../src/hierarchy/paths.js';
import { HierarchyWriter } from '../../src/hierarchy/writer.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import { inClusterTree, parseCheckpoint, syncCheckpointKey } from '../../src/sync/cluster-sync.js';
import { createLogger } from '../../src/util/logger.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';
import { killAll, spawnCli, type CliProcess } from '../support/cli-process.js';

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let east: EtcdHandle;
let west: EtcdHandle;
let shared: EtcdHandle;
let eastC: EtcdCoordination;
let westC: EtcdCoordination;
let sharedC: EtcdCoordination;
const syncs = new Map<string, CliProcess>();

/** Samples of `hosts` x `gpus` GPUs with three metrics, at `t`. */
function batchOf(clusterId: string, hosts: number, gpus: number, t: number, value = 50): Batch {
  const samples: Sample[] = [];
  for (let h = 1; h <= hosts; h++) {
    for (let g = 0; g < gpus; g++) {
      for (const metric of ['DCGM_FI_DEV_GPU_UTIL', 'DCGM_FI_DEV_GPU_TEMP', 'DCGM_FI_DEV_POWER_USAGE']) {
        samples.push({
          clusterId,
          hostname: `${clusterId}-host-${String(h).padStart(2, '0')}`,
          gpuId: String(g),
          uuid: `GPU-${clusterId}-${h}-${g}`,
          device: `nvidia${g}`,
          modelName: 'NVIDIA H100 80GB HBM3',
          metric,
          container: '',
          pod: '',
          namespace: '',
          labels: {},
          timestampMs: t,
          value: value + g,
        });
      }
    }
  }
  return { id: `${clusterId}-${t}`, source: 'test', samples, deadLetters: [] };
}

/** Write a cluster's hierarchy the way its collectors do. */
async function writeCluster(c: EtcdCoordination, clusterId: string, hosts: number, gpus: number, t: number) {
  const writer = new HierarchyWriter({ coordination: c });
  await writer.registerCluster({ clusterId, name: `${clusterId} cluster`, region: clusterId });
  await writer.apply(batchOf(clusterId, hosts, gpus, t));
}

/** The cluster's tree (key -> value) in a store. */
async function tree(c: EtcdCoordination, clusterId: string): Promise<Map<string, string>> {
  const res = await c.range(clusterKey(clusterId));
  return new Map(res.kvs.filter((kv) => inClusterTree(clusterId, kv.key)).map((kv) => [kv.key, kv.value]));
}

async function mirrored(source: EtcdCoordination, clusterId: string): Promise<boolean> {
  const [a, b] = await Promise.all([tree(source, clusterId), tree(sharedC, clusterId)]);
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

async function waitMirrored(source: EtcdCoordination, clusterId: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await mirrored(source, clusterId))) {
    if (Date.now() > deadline) {
      const [a, b] = await Promise.all([tree(source, clusterId), tree(sharedC, clusterId)]);
      throw new Error(
        `cluster ${clusterId} not mirrored in time: source ${a.size} keys, target ${b.size}\n${syncs.get(clusterId)?.output().slice(-3000)}`,
      );
    }
    await sleep(200);
  }
}

function startSync(clusterId: string, from: EtcdHandle): CliProcess {
  const p = spawnCli(
    ['sync', '--from', from.endpointList, '--to', shared.endpointList, '--cluster', clusterId],
    {
      LOG_LEVEL: 'info',
    },
  );
  syncs.set(clusterId, p);
  return p;
}

async function checkpoint(clusterId: string): Promise<{ revision: number; modRevision: number }> {
  const kv = await sharedC.get(syncCheckpointKey(clusterId));
  if (!kv) throw new Error(`no checkpoint for ${clusterId}`);
  return { revision: parseCheckpoint(kv.value)!.revision, modRevision: kv.modRevision };
}

beforeAll(async () => {
  [east, west, shared] = await Promise.all([startEtcd(), startEtcd(), startEtcd()]);
  eastC = createEtcdCoordination({ endpoints: east.endpointList });
  westC = createEtcdCoordination({ endpoints: west.endpointList });
  sharedC = createEtcdCoordination({ endpoints: shared.endpointList });
  const t0 = Date.now();
  await writeCluster(eastC, 'east', 4, 8, t0);
  await writeCluster(eastC, 'east-2', 1, 2, t0); // shares the "east" key prefix; must not be mirrored
  await writeCluster(westC, 'west', 3, 4, t0);
}, 120_000);

afterAll(async () => {
  for (const p of syncs.values()) p.kill('SIGTERM');
  await Promise.race([Promise.all([...syncs.values()].map((p) => p.exited)), sleep(10_000)]);
  killAll();
  await Promise.all([eastC?.close(), westC?.close(), sharedC?.close()]);
  await Promise.all([east?.stop(), west?.stop(), shared?.stop()]);
});

describe('nexus-telemetry sync: two source etcds into one shared etcd', () => {
  it('mirrors each cluster tree into the shared etcd, and nothing else', async () => {
    const e = startSync('east', east);
    const w = startSync('west', west);
    await Promise.all([e.waitFor(/syncing cluster east/), w.waitFor(/syncing cluster west/)]);
    await Promise.all([waitMirrored(eastC, 'east'), waitMirrored(westC, 'west')]);
    expect((await tree(sharedC, 'east')).size).toBe(1 + 4 + 32);
    expect((await tree(sharedC, 'east-2')).size).toBe(0);
    // Logged after the listing's txn, so it may reach the pipe after the keys are visible.
    await e.waitFor(/applied the initial listing/, 10_000);
  });

  it('mirrors puts and deletes, each txn carrying the checkpoint', async () => {
    const writer = new HierarchyWriter({ coordination: eastC });
    await writer.apply(batchOf('east', 2, 8, Date.now(), 90));
    await eastC.deletePrefix(hostKey('east', 'east-host-04')); // host retired: its record and GPUs go
    const gpu0 = gpuKey('east', 'east-host-01', '0');
    const record = JSON.parse((await eastC.get(gpu0))!.value) as { lastSeenMs: number };
    const last = await eastC.put(gpu0, JSON.stringify({ ...record, lastSeenMs: record.lastSeenMs + 1 }));
    await waitMirrored(eastC, 'east');
    expect((await tree(sharedC, 'east')).has(hostKey('east', 'east-host-04'))).toBe(false);
    const cp = await checkpoint('east');
    expect(cp.revision).toBeGreaterThanOrEqual(last);
    // The mirrored write and the checkpoint were written by the same target txn.
    const gpu = await sharedC.get(gpu0);
    expect(gpu?.modRevision).toBe(cp.modRevision);
  });

  it('an API on the shared etcd lists every mirrored cluster', async () => {
    const reader = new HierarchyReader(sharedC, 3_600_000);
    const clusters = await reader.listClusters();
    expect(clusters.map((c) => [c.clusterId, c.totals.total_hosts, c.totals.total_gpus])).toEqual([
      ['east', 3, 24],
      ['west', 3, 12],
    ]);
    const store: PgliteSampleStore = await createPgliteSampleStore({ memory: true });
    await store.migrate();
    const app = await buildApp({
      coordination: sharedC,
      store,
      logger: createLogger('silent'),
      metrics: createPipelineMetrics(),
      staleAfterMs: 3_600_000,
      readiness: {},
    });
    try {
      const res = await app.inject({ method: 'GET', url: '/api/v1/clusters' });
      expect(res.statusCode).toBe(200);
      const list = res.json() as { cluster_id: string; metadata: { total_gpus: number } }[];
      expect(list.map((c) => [c.cluster_id, c.metadata.total_gpus])).toEqual([
        ['east', 24],
        ['west', 12],
      ]);
      const west1 = await app.inject({ method: 'GET', url: '/api/v1/clusters/west/hosts' });
      expect(west1.statusCode).toBe(200);
    } finally {
      await app.close();
      await store.close();
    }
  });

  it('a restarted sync resumes from its checkpoint', async () => {
    const before = syncs.get('east')!;
    before.kill('SIGKILL');
    await before.exited;
    const stoppedAt = (await checkpoint('east')).revision;
    const writer = new HierarchyWriter({ coordination: eastC });
    await writer.apply(batchOf('east', 3, 8, Date.now(), 10));
    await eastC.delete(gpuKey('east', 'east-host-02', '7'));
    const after = startSync('east', east);
    await after.waitFor(/resuming sync after the checkpoint/);
    await waitMirrored(eastC, 'east');
    expect(after.output()).toContain(`"revision":${stoppedAt}`);
    expect(after.output()).not.toContain('applied the initial listing');
    expect(after.output()).not.toContain('resynced from a fresh listing');
  });

  it('a sync SIGSTOPped across a compaction of its source re-lists and ends equal to the source', async () => {
    const w = syncs.get('west')!;
    w.kill('SIGSTOP');
    try {
      // Megabytes of changes, deletes, then compaction: the paused watcher's history is gone.
      const writer = new HierarchyWriter({ coordination: westC });
      for (let i = 0; i < 40; i++) await writer.apply(batchOf('west', 3, 4, Date.now() + i, i));
      const pad = 'p'.repeat(32 * 1024);
      for (let i = 0; i < 120; i++) {
        await westC.put(`${clusterKey('west')}/notes/${i % 40}`, `${i}:${pad}`);
      }
      await westC.deletePrefix(hostKey('west', 'west-host-03'));
      await westC.compact(await westC.revision());
    } finally {
      w.kill('SIGCONT');
    }
    await waitMirrored(westC, 'west');
    await w.waitFor(/resynced from a fresh listing/, 30_000);
    expect((await tree(sharedC, 'west')).has(hostKey('west', 'west-host-03'))).toBe(false);
    const reader = new HierarchyReader(sharedC, 3_600_000);
    expect((await reader.getCluster('west'))?.totals.total_hosts).toBe(2);
  });

  it('refuses to mirror a cluster onto itself', async () => {
    const p = spawnCli(
      ['sync', '--from', east.endpointList, '--to', east.endpointList, '--cluster', 'east'],
      {
        LOG_LEVEL: 'warn',
      },
    );
    expect(await p.exited).toBe(2);
    expect(p.output()).toContain('same etcd cluster');
  });
});
