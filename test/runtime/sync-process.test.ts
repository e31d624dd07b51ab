/**
 * The `sync` composition root opens both etcd clusters through the backend registry: bad endpoint
 * lists and a cluster mirrored onto itself are CONFIG_INVALID naming the flag, and two real
 * single-member etcd clusters get mirrored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { NexusError } from '../../src/errors.js';
import { HierarchyWriter } from '../../src/hierarchy/writer.js';
import { clusterKey } from '../../src/hierarchy/paths.js';
import { openCoordination } from '../../src/runtime/registry.js';
import { startSyncProcess, type SyncProcessOptions } from '../../src/sync/process.js';
import { createLogger } from '../../src/util/logger.js';
import { startEtcd, type EtcdHandle } from '../harness/etcd.js';

const config = loadConfig({}, { CLUSTER_ID: 'east', LOG_LEVEL: 'silent' });
const logger = createLogger('silent');
let east: EtcdHandle;
let shared: EtcdHandle;

beforeAll(async () => {
  [east, shared] = await Promise.all([startEtcd(), startEtcd()]);
});

afterAll(async () => {
  await Promise.all([east?.stop(), shared?.stop()]);
});

async function refusal(options: Omit<SyncProcessOptions, 'config' | 'clusterId' | 'logger'>) {
  const error = await startSyncProcess({ config, clusterId: 'east', logger, ...options }).then(
    async (running) => {
      await running.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(NexusError);
  const e = error as NexusError;
  return { code: e.code, message: e.message, details: e.details };
}

describe('startSyncProcess', () => {
  it('names the flag of a bad endpoint list', async () => {
    expect(await refusal({ from: 'not a host', to: shared.endpointList })).toEqual({
      code: 'CONFIG_INVALID',
      message: '--from: ETCD_ENDPOINTS entry "not a host" is not host:port',
      details: { flag: '--from' },
    });
    expect(await refusal({ from: east.endpointList, to: 'db:nope' })).toEqual({
      code: 'CONFIG_INVALID',
      message: '--to: ETCD_ENDPOINTS entry "db:nope" is not host:port',
      details: { flag: '--to' },
    });
  });

  it('refuses to mirror a cluster onto itself', async () => {
    const refused = await refusal({ from: east.endpointList, to: east.endpointList });
    expect(refused.code).toBe('CONFIG_INVALID');
    expect(refused.message).toMatch(/^--from and --to reach the same etcd cluster \([0-9]+\)/);
    expect(refused.details).toEqual({ flag: '--to' });
  });

  it('mirrors the cluster record from one etcd to the other', async () => {
    const source = await openCoordination('etcd', { ...config, ETCD_ENDPOINTS: east.endpointList });
    const target = await openCoordination('etcd', { ...config, ETCD_ENDPOINTS: shared.endpointList });
    const running = await startSyncProcess({
      config,
      from: east.endpointList,
      to: shared.endpointList,
      clusterId: 'east',
      logger,
    });
    try {
      await new HierarchyWriter({ coordination: source }).registerCluster({
        clusterId: 'east',
        name: 'east cluster',
        region: 'us-east',
      });
      const written = await source.get(clusterKey('east'));
      expect(JSON.parse(written!.value)).toMatchObject({ name: 'east cluster', region: 'us-east' });
      const deadline = Date.now() + 20_000;
      let mirrored = await target.get(clusterKey('east'));
      while (mirrored === undefined && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        mirrored = await target.get(clusterKey('east'));
      }
      expect(mirrored?.value).toBe(written!.value);
    } finally {
      await running.close();
      await Promise.all([source.close(), target.close()]);
    }
  });
});
