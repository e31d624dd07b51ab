/**
 * Traditional mode has no etcd, so the API derives its hierarchy from PostgreSQL: every few seconds it
 * reads the latest sample of each series and mirrors them into an in-process coordination store through
 * the same HierarchyWriter the collector uses. A GPU counts as seen when its newest sample changed
 * since the previous pass (or on the first pass), so GPUs that stop reporting go inactive after
 * STALE_AFTER, as in the other modes. The latest samples keep their labels, so MIG instance series
 * (`GPU_I_ID`) become instance records under their GPU as in the collector. Scrape presence does not
 * reach this mode (it rides on queue batches), so a GPU that vanishes from a scrape goes inactive
 * after STALE_AFTER here, not at once.
 */
import { createEmbeddedCoordination } from '../adapters/embedded/coordination.js';
import { clusterName, type Config } from '../config/config.js';
import type { Sample } from '../domain/types.js';
import { HierarchyWriter } from '../hierarchy/writer.js';
import type { Coordination } from '../ports/coordination.js';
import type { SampleStore } from '../ports/sample-store.js';
import type { Logger } from '../util/logger.js';

export interface StoreHierarchyMirror {
  readonly coordination: Coordination;
  /** Run one pass now (also runs on the interval). */
  refresh(): Promise<void>;
  close(): Promise<void>;
}

/** Build the mirror, run a first pass, and keep refreshing every `intervalMs` (default 5 s). */
export async function startStoreHierarchyMirror(options: {
  store: SampleStore;
  config: Config;
  logger: Logger;
  intervalMs?: number;
}): Promise<StoreHierarchyMirror> {
  const { store, config } = options;
  const coordination = createEmbeddedCoordination();
  const writer = new HierarchyWriter({ coordination });
  await writer.registerCluster({
    clusterId: config.CLUSTER_ID,
    name: clusterName(config),
    region: config.CLUSTER_REGION,
  });
  const newestByGpu = new Map<string, number>();

  const refresh = async (): Promise<void> => {
    const latest = await store.latestSamples();
    const byGpu = new Map<string, Sample[]>();
    for (const s of latest) {
      const key = `${s.clusterId}\u0000${s.hostname}\u0000${s.gpuId}`;
      let list = byGpu.get(key);
      if (!list) byGpu.set(key, (list = []));
      list.push(s);
    }
    const changed: Sample[] = [];
    for (const [key, samples] of byGpu) {
      const newest = Math.max(...samples.map((s) => s.timestampMs));
      if (newestByGpu.get(key) === newest) continue;
      newestByGpu.set(key, newest);
      changed.push(...samples);
    }
    if (changed.length > 0)
      await writer.apply({ id: 'store-mirror', source: 'postgres', samples: changed, deadLetters: [] });
  };

  await refresh();
  const timer = setInterval(() => {
    refresh().catch((error: unknown) =>
      options.logger.warn({ err: error }, 'hierarchy refresh from the store failed'),
    );
  }, options.intervalMs ?? 5000);
  timer.unref();
  return {
    coordination,
    refresh,
    async close() {
      clearInterval(timer);
      await coordination.close();
    },
  };
}
