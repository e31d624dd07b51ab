/**
 * A generated fleet for the analytics tests: the generator's CSV with planned workloads, parsed and
 * written into an in-memory PGlite store (with rollups), an app over it, and the generator's own
 * plan, from which the tests compute the expected answers. `drift` adds degrees to one GPU's
 * temperature over a window of scrapes (an injected peer outlier).
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { createEmbeddedCoordination } from '../../src/adapters/embedded/coordination.js';
import { createPgliteSampleStore } from '../../src/adapters/pglite/sample-store.js';
import { buildApp } from '../../src/api/app.js';
import { DEFAULT_LIMITS } from '../../src/api/graphql/limits.js';
import { parsePrices } from '../../src/analytics/prices.js';
import type { Sample } from '../../src/domain/types.js';
import {
  generateDcgmCsv,
  resolveGeneratorOptions,
  type GeneratorOptions,
} from '../../src/generate/generator.js';
import { planWorkloads, type WorkloadPlan } from '../../src/generate/workloads.js';
import { DcgmParser } from '../../src/ingest/dcgm-reader.js';
import { createPipelineMetrics } from '../../src/metrics/registry.js';
import type { SampleStore } from '../../src/ports/sample-store.js';
import { batch } from '../support/samples.js';

/** The injected drift: `degrees` more on one GPU's temperature in scrapes [from, to). */
export interface Drift {
  hostname: string;
  gpuId: string;
  fromScrape: number;
  toScrape: number;
  degrees: number;
}

export interface AnalyticsFleet {
  app: FastifyInstance;
  store: SampleStore;
  plan: WorkloadPlan;
  samples: number;
  close(): Promise<void>;
}

export const METRICS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'DCGM_FI_DEV_POWER_USAGE',
  'DCGM_FI_DEV_FB_USED',
  'DCGM_FI_DEV_GPU_TEMP',
  'DCGM_FI_DEV_SM_CLOCK',
];

/** Generate, ingest and serve. */
export async function analyticsFleet(options: GeneratorOptions, drift?: Drift): Promise<AnalyticsFleet> {
  const o = resolveGeneratorOptions(options);
  const plan = planWorkloads(o);
  const store = await createPgliteSampleStore({ memory: true });
  await store.migrate();
  const parser = new DcgmParser({ source: 'gen', clusterId: 'c1', now: () => Date.UTC(2030, 0, 1) });
  let pending: Sample[] = [];
  let samples = 0;
  const flush = async (): Promise<void> => {
    if (pending.length === 0) return;
    const r = await store.writeBatch(batch(pending, [], `gen-${samples}`));
    samples += r.inserted;
    pending = [];
  };
  const take = async (results: ReturnType<DcgmParser['push']>): Promise<void> => {
    for (const r of results) {
      if (!r.ok) throw new Error(`generated row refused: ${r.deadLetter.reason}`);
      const s = r.sample;
      if (
        drift &&
        s.metric === 'DCGM_FI_DEV_GPU_TEMP' &&
        s.hostname === drift.hostname &&
        s.gpuId === drift.gpuId
      ) {
        const scrape = Math.round((s.timestampMs - o.startMs) / o.intervalMs);
        if (scrape >= drift.fromScrape && scrape < drift.toScrape) s.value += drift.degrees;
      }
      pending.push(s);
      if (pending.length >= 5000) await flush();
    }
  };
  for (const chunk of generateDcgmCsv(options)) await take(parser.push(chunk));
  await take(parser.end());
  await flush();
  const coordination = createEmbeddedCoordination();
  const app = await buildApp(
    {
      coordination,
      store,
      logger: pino({ level: 'silent' }),
      metrics: createPipelineMetrics(),
      staleAfterMs: 60_000,
      readiness: {},
    },
    {
      docs: false,
      analytics: { prices: parsePrices('H100=2.5,A100=1.2,default=1') },
      graphql: { introspection: true, limits: DEFAULT_LIMITS, maxBatch: 10 },
    },
  );
  await app.ready();
  return {
    app,
    store,
    plan,
    samples,
    async close() {
      await app.close();
      await store.close();
      await coordination.close();
    },
  };
}
