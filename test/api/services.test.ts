import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { buildApp } from '../../src/api/app.js';
import { registerService, type ServiceRecord } from '../../src/discovery/registry.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { createLogger } from '../../src/util/logger.js';

const coordination = createEmbeddedCoordination();
let store: SampleStore;

const record = (type: ServiceRecord['type'], id: string): ServiceRecord => ({
  type,
  id,
  address: type === 'api' ? 'http://127.0.0.1:9999' : '',
  version: '0.1.0',
  startedAt: '2026-01-01T00:00:00.000Z',
  health: 'ok',
  pid: 42,
  hostname: 'node-a',
});

beforeAll(async () => {
  store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
});
afterAll(async () => {
  await store.close();
  await coordination.close();
});

describe('GET /api/v1/services', () => {
  it('lists registered processes and drops one when its registration ends', async () => {
    const app = await buildApp({
      coordination,
      store,
      logger: createLogger('silent'),
      metrics: createPipelineMetrics({ defaultMetrics: false }),
      staleAfterMs: 60_000,
      readiness: {},
    });
    const collector = await registerService(coordination, record('collector', 'collector-1'));
    const api = await registerService(coordination, record('api', 'api-1'));
    const listed = (await app.inject('/api/v1/services')).json() as {
      type: string;
      id: string;
      address: string;
    }[];
    expect(listed.map((s) => `${s.type}/${s.id}`)).toEqual(['api/api-1', 'collector/collector-1']);
    expect(listed[0]!.address).toBe('http://127.0.0.1:9999');

    await api.update('degraded');
    const health = (await app.inject('/api/v1/services')).json() as { id: string; health: string }[];
    expect(health.find((s) => s.id === 'api-1')?.health).toBe('degraded');

    await collector.close();
    const after = (await app.inject('/api/v1/services')).json() as { id: string }[];
    expect(after.map((s) => s.id)).toEqual(['api-1']);
    await api.close();
    await app.close();
  });
});
