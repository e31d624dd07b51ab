/**
 * Per-operation DataLoaders over the hierarchy reader, so the number of coordination reads of a
 * query does not grow with its fan-out: `cluster { hosts { gpus { status } } }` over 247 GPUs is
 * three range reads (the cluster, its hosts, every GPU), whatever the number of hosts. GPU status
 * comes from the live records, so it needs no sample-store call at all. Lookups by UUID return every
 * GPU with that UUID (one UUID may be reported on several hosts); `storedGpus` is the store's GPU
 * list, read at most once per operation, for telemetry by UUID.
 */
import DataLoader from 'dataloader';
import type { ClusterSummary, GpuStatus, HierarchyReader, HostSummary } from '../../hierarchy/reader.js';
import type { SampleStore, StoredGpu } from '../../ports/sample-store.js';

/** The loaders of one GraphQL operation (never shared between operations: they cache). */
export interface Loaders {
  /** Every cluster. */
  clusters: DataLoader<'all', ClusterSummary[]>;
  /** One cluster by id. */
  cluster: DataLoader<string, ClusterSummary | undefined>;
  /** Hosts of a cluster by cluster id (undefined for an unknown cluster). */
  hosts: DataLoader<string, HostSummary[] | undefined>;
  /** GPUs of a host, by {@link hostKey}. */
  gpus: DataLoader<string, GpuStatus[]>;
  /** Every live GPU with this UUID (case-insensitive): usually one, several when hosts share it. */
  gpusByUuid: DataLoader<string, GpuStatus[]>;
  /** Every GPU the sample store holds series for. */
  storedGpus: DataLoader<'all', StoredGpu[]>;
}

/** Loader key of a host. */
export const hostKey = (clusterId: string, hostname: string): string => `${clusterId}\u0000${hostname}`;

/** Build fresh loaders for one operation (`store`: the operation's, read-limited, sample store). */
export function createLoaders(reader: HierarchyReader, store: SampleStore): Loaders {
  const clusters = new DataLoader<'all', ClusterSummary[]>(async (keys) => {
    const all = await reader.listClusters();
    return keys.map(() => all);
  });

  const cluster = new DataLoader<string, ClusterSummary | undefined>(async (ids) => {
    if (ids.length === 1) return [await reader.getCluster(ids[0]!)];
    const byId = new Map((await clusters.load('all')).map((c) => [c.clusterId, c]));
    return ids.map((id) => byId.get(id));
  });

  const hosts = new DataLoader<string, HostSummary[] | undefined>((ids) =>
    Promise.all(ids.map((id) => reader.listHosts(id))),
  );

  // GPUs of one host: one range read of that host; of several hosts: one read of every GPU.
  const gpus = new DataLoader<string, GpuStatus[]>(async (keys) => {
    if (keys.length === 1) {
      const [clusterId, hostname] = keys[0]!.split('\u0000') as [string, string];
      return [(await reader.listGpus(clusterId, hostname)) ?? []];
    }
    const byHost = new Map<string, GpuStatus[]>();
    for (const g of await reader.listAllGpus()) {
      const key = hostKey(g.clusterId, g.hostname);
      let list = byHost.get(key);
      if (!list) byHost.set(key, (list = []));
      list.push(g);
    }
    return keys.map((k) => byHost.get(k) ?? []);
  });

  const gpusByUuid = new DataLoader<string, GpuStatus[]>(
    async (uuids) => {
      const byUuid = new Map<string, GpuStatus[]>();
      for (const g of await reader.listAllGpus()) {
        const key = g.uuid.toLowerCase();
        let list = byUuid.get(key);
        if (!list) byUuid.set(key, (list = []));
        list.push(g);
      }
      return uuids.map((u) => byUuid.get(u.toLowerCase()) ?? []);
    },
    { cacheKeyFn: (u) => u.toLowerCase() },
  );

  const storedGpus = new DataLoader<'all', StoredGpu[]>(async (keys) => {
    const all = await store.listGpus();
    return keys.map(() => all);
  });

  return { clusters, cluster, hosts, gpus, gpusByUuid, storedGpus };
}
