/**
 * Runs the queue conformance suite on the etcd adapter against real etcd: a single member and a
 * three-member cluster, each started once for the file, plus the single member with watch off
 * (ENABLE_WATCH_API=false: waits poll at POLL_INTERVAL). Every handle is its own EtcdQueue with its
 * own client and lease, like separate processes; tests are isolated by topic and cluster id.
 */
import { afterAll, beforeAll, describe } from 'vitest';
import { createEtcdQueue, type EtcdQueueOptions } from '../../src/adapters/etcd/queue.js';
import { type QueueCapabilities, queueConformance } from '../conformance/queue.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';

for (const members of [1, 3] as const) {
  const label = `etcd (${members} member${members > 1 ? 's' : ''})`;
  describe(label, () => {
    let etcd: EtcdHandle | undefined;

    beforeAll(async () => {
      etcd = await startEtcd({ members });
    });
    afterAll(async () => {
      await etcd?.stop();
    });

    const all: QueueCapabilities = {
      watch: true,
      claimExpiry: true,
      multipleConsumers: true,
      persistence: true,
    };
    const variants: { name: string; extra: Partial<EtcdQueueOptions>; capabilities: QueueCapabilities }[] = [
      { name: label, extra: {}, capabilities: all },
    ];
    if (members === 1) {
      variants.push({
        name: `${label}, watch off`,
        extra: { watch: false, pollIntervalMs: 200 },
        capabilities: {
          ...all,
          watch: 'watch off (ENABLE_WATCH_API=false): waiting claims poll every 200 ms',
        },
      });
    }
    for (const { name, extra, capabilities } of variants) {
      const clusterId = `conformance-${members}-${extra.watch === false ? 'poll' : 'watch'}-${process.pid}`;
      queueConformance(
        name,
        async (options) => {
          if (!etcd) throw new Error('etcd did not start');
          const queue = await createEtcdQueue({ ...options, ...extra, endpoints: etcd.endpoints, clusterId });
          return { queue, teardown: () => queue.close() };
        },
        capabilities,
      );
    }
  });
}
