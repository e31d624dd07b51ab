// HierarchyReader over the real embedded coordination store: grouping, totals, activity by
// staleAfterMs with an injected clock, prefix collisions between ids, lookups, bad records.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import type { ClusterRecord, GpuRecord, HostRecord } from '../../src/domain/types.js';
import { HierarchyReader } from '../../src/hierarchy/reader.js';
import { clusterKey, gpuKey, hostKey } from '../../src/hierarchy/paths.js';
import type { Coordination } from '../../src/ports/coordination.js';

const NOW = Date.UTC(2025, 6, 18, 21, 0, 0);
const STALE = 60_000;

async function putCluster(c: Coordination, clusterId: string, name: string, region: string) {
  const record: ClusterRecord = { clusterId, name, region, lastSeenMs: NOW };
  await c.put(clusterKey(clusterId), JSON.stringify(record));
}
async function putHost(c: Coordination, clusterId: string, hostname: string, lastSeenMs: number) {
  const record: HostRecord = { clusterId, hostname, lastSeenMs };
  await c.put(hostKey(clusterId, hostname), JSON.stringify(record));
}
async function putGpu(
  c: Coordination,
  clusterId: string,
  hostname: string,
  gpuId: string,
  lastSeenMs: number,
) {
  const record: GpuRecord = {
    clusterId,
    hostname,
    gpuId,
    uuid: `GPU-${clusterId}-${hostname}-${gpuId}`,
    device: `nvidia${gpuId}`,
    modelName: 'NVIDIA H100 80GB HBM3',
    metrics: { DCGM_FI_DEV_GPU_UTIL: { value: 42, timestampMs: NOW - 5000 } },
    lastSampleMs: NOW - 5000,
    lastSeenMs,
  };
  await c.put(gpuKey(clusterId, hostname, gpuId), JSON.stringify(record));
}

describe('HierarchyReader', () => {
  let coordination: Coordination;
  let now: number;
  let invalid: string[];
  let reader: HierarchyReader;

  beforeEach(async () => {
    coordination = createEmbeddedCoordination();
    now = NOW;
    invalid = [];
    reader = new HierarchyReader(
      coordination,
      STALE,
      () => now,
      (key) => invalid.push(key),
    );
    await putCluster(coordination, 'dgx-a', 'DGX A', 'us-west-1');
    await putHost(coordination, 'dgx-a', 'hgpu-031', NOW - 1000);
    await putGpu(coordination, 'dgx-a', 'hgpu-031', '0', NOW - 1000);
    await putGpu(coordination, 'dgx-a', 'hgpu-031', '1', NOW - STALE); // exactly at the edge: active
    await putGpu(coordination, 'dgx-a', 'hgpu-031', '10', NOW - STALE - 1); // just past it: inactive
    await putHost(coordination, 'dgx-a', 'hgpu-0312', NOW - 10 * STALE); // shares a prefix with hgpu-031
    await putGpu(coordination, 'dgx-a', 'hgpu-0312', '0', NOW - 10 * STALE);
    // A cluster whose id extends dgx-a's: its records must never count towards dgx-a.
    await putCluster(coordination, 'dgx-ab', 'DGX AB', 'eu-north-1');
    await putHost(coordination, 'dgx-ab', 'node-1', NOW);
    await putGpu(coordination, 'dgx-ab', 'node-1', '0', NOW);
  });

  afterEach(async () => {
    await coordination.close();
  });

  it('lists clusters with totals, separating ids that share a prefix', async () => {
    const clusters = await reader.listClusters();
    expect(clusters.map((c) => [c.clusterId, c.name, c.region, c.totals])).toEqual([
      ['dgx-a', 'DGX A', 'us-west-1', { total_hosts: 2, total_gpus: 4, active_hosts: 1, active_gpus: 2 }],
      ['dgx-ab', 'DGX AB', 'eu-north-1', { total_hosts: 1, total_gpus: 1, active_hosts: 1, active_gpus: 1 }],
    ]);
    expect((await reader.getCluster('dgx-a'))?.totals).toEqual(clusters[0]?.totals);
    expect(await reader.getCluster('dgx')).toBeUndefined();
  });

  it('derives activity from the injected clock', async () => {
    now = NOW + STALE; // hgpu-031 last seen NOW-1000: now 61 s ago
    expect((await reader.getCluster('dgx-a'))?.totals).toEqual({
      total_hosts: 2,
      total_gpus: 4,
      active_hosts: 0,
      active_gpus: 0,
    });
    now = NOW - 20 * STALE; // clock behind every record: all active
    expect((await reader.getCluster('dgx-a'))?.totals.active_gpus).toBe(4);
  });

  it('lists hosts in natural order with GPU counts', async () => {
    const hosts = await reader.listHosts('dgx-a');
    expect(hosts?.map((h) => [h.hostname, h.active, h.gpuCount, h.activeGpuCount])).toEqual([
      ['hgpu-031', true, 3, 2],
      ['hgpu-0312', false, 1, 0],
    ]);
    expect(await reader.listHosts('nope')).toBeUndefined();
  });

  it('lists GPUs of exactly one host, ordered by index', async () => {
    const gpus = await reader.listGpus('dgx-a', 'hgpu-031');
    expect(gpus?.map((g) => [g.gpuId, g.active])).toEqual([
      ['0', true],
      ['1', true],
      ['10', false],
    ]);
    expect(await reader.listGpus('dgx-a', 'hgpu-03')).toBeUndefined();
    expect(await reader.getHost('dgx-a', 'hgpu-03')).toBeUndefined();
    expect((await reader.getHost('dgx-a', 'hgpu-0312'))?.gpuCount).toBe(1);
  });

  it('finds a GPU by index or UUID, and by UUID across clusters', async () => {
    expect((await reader.getGpu('dgx-a', 'hgpu-031', '1'))?.uuid).toBe('GPU-dgx-a-hgpu-031-1');
    expect((await reader.getGpu('dgx-a', 'hgpu-031', 'gpu-dgx-a-hgpu-031-10'))?.gpuId).toBe('10');
    expect(await reader.getGpu('dgx-a', 'hgpu-031', 'GPU-dgx-ab-node-1-0')).toBeUndefined();
    expect(await reader.getGpu('dgx-a', 'hgpu-031', '7')).toBeUndefined();
    const found = await reader.findGpuByUuid('GPU-dgx-ab-node-1-0');
    expect([found?.clusterId, found?.hostname, found?.gpuId, found?.active]).toEqual([
      'dgx-ab',
      'node-1',
      '0',
      true,
    ]);
    expect(await reader.findGpuByUuid('GPU-missing')).toBeUndefined();
    expect((await reader.listAllGpus()).map((g) => g.uuid)).toEqual([
      'GPU-dgx-a-hgpu-031-0',
      'GPU-dgx-a-hgpu-031-1',
      'GPU-dgx-a-hgpu-031-10',
      'GPU-dgx-a-hgpu-0312-0',
      'GPU-dgx-ab-node-1-0',
    ]);
  });

  it('shows hosts and clusters that only have child records', async () => {
    await putGpu(coordination, 'dgx-c', 'lonely', '0', NOW);
    const cluster = await reader.getCluster('dgx-c');
    expect([cluster?.name, cluster?.region, cluster?.totals]).toEqual([
      'dgx-c',
      '',
      { total_hosts: 1, total_gpus: 1, active_hosts: 1, active_gpus: 1 },
    ]);
    expect((await reader.getHost('dgx-c', 'lonely'))?.lastSeenMs).toBe(NOW);
  });

  it('skips records that do not parse and reports them', async () => {
    await coordination.put(gpuKey('dgx-a', 'hgpu-031', '2'), '{not json');
    await coordination.put(gpuKey('dgx-a', 'hgpu-031', '3'), JSON.stringify({ uuid: 'GPU-x' }));
    await coordination.put('/telemetry/clusters/dgx-a/other/thing', '{}');
    expect((await reader.listGpus('dgx-a', 'hgpu-031'))?.map((g) => g.gpuId)).toEqual(['0', '1', '10']);
    expect(invalid.sort()).toEqual([gpuKey('dgx-a', 'hgpu-031', '2'), gpuKey('dgx-a', 'hgpu-031', '3')]);
  });

  it('parses a record once per change: later reads reuse it, see updates and forget deleted keys', async () => {
    const first = await reader.getGpu('dgx-a', 'hgpu-031', '0');
    const again = await reader.listAllGpus();
    // Same parsed metrics object: the value was not parsed again.
    expect(again.find((g) => g.gpuId === '0' && g.hostname === 'hgpu-031')!.metrics).toBe(first!.metrics);

    await putGpu(coordination, 'dgx-a', 'hgpu-031', '0', NOW - 10);
    const changed = await reader.getGpu('dgx-a', 'hgpu-031', '0');
    expect(changed!.lastSeenMs).toBe(NOW - 10);
    expect(changed!.metrics).not.toBe(first!.metrics);

    await coordination.delete(gpuKey('dgx-a', 'hgpu-031', '0'));
    expect(await reader.getGpu('dgx-a', 'hgpu-031', '0')).toBeUndefined();
    expect((await reader.listAllGpus()).some((g) => g.gpuId === '0' && g.hostname === 'hgpu-031')).toBe(
      false,
    );

    // A bad value is reported once per change, not on every read.
    await coordination.put(gpuKey('dgx-a', 'hgpu-031', '7'), '{not json');
    await reader.listAllGpus();
    await reader.listAllGpus();
    expect(invalid).toEqual([gpuKey('dgx-a', 'hgpu-031', '7')]);
  });
});
