// Every health reason from generated faults: the generator injects a fault on one GPU for a window,
// the real DCGM reader parses the CSV, the collector's HierarchyWriter writes it scrape by scrape to
// the embedded coordination store, and the reader's health after each scrape shows the reason
// appearing at the window's start (with its since), and clearing when the window ends (gauges at
// once, XIDs and counter increases after the 5 min hold of sample time). Other GPUs stay ok.
import { afterEach, describe, expect, it } from 'vitest';
import { parseFaults } from '../../src/generate/faults.js';
import { HEALTH_HOLD_MS } from '../../src/health/model.js';
import {
  CLUSTER,
  generatedScrapes,
  HealthRig,
  INTERVAL,
  offsets,
  START,
  timeline,
  whenPresent,
} from './support.js';

const HOST2 = 'sim-dgx1-hgpu-002';
const WINDOW = { fromMs: 60_000, toMs: 120_000 };
/** Last scrape inside the window. */
const LAST_IN = WINDOW.toMs - INTERVAL;
/** Every scrape of a 10 min run. */
const RUN = { durationMs: 10 * 60_000 };

describe('gauge faults: the reason lasts exactly the window', () => {
  const cases = [
    { spec: 'remap-failure:2/1@1m-2m', code: 'ROW_REMAP_FAILURE', state: 'critical', value: 1 },
    { spec: 'thermal-throttle:2/1@1m-2m', code: 'THROTTLE_SW_THERMAL', state: 'warning', value: 0x20 },
    {
      spec: 'thermal-throttle:2/1@1m-2m:bits=0x40',
      code: 'THROTTLE_HW_THERMAL',
      state: 'critical',
      value: 0x40,
    },
    { spec: 'power-throttle:2/1@1m-2m', code: 'THROTTLE_SW_POWER_CAP', state: 'warning', value: 0x4 },
    {
      spec: 'power-throttle:2/1@1m-2m:bits=0x80',
      code: 'THROTTLE_HW_POWER_BRAKE',
      state: 'critical',
      value: 0x80,
    },
    { spec: 'power-throttle:2/1@1m-2m:bits=0x8', code: 'THROTTLE_HW_SLOWDOWN', state: 'warning', value: 0x8 },
    { spec: 'overheat:host002/gpu1@1m-2m:temp=93', code: 'OVERHEATING', state: 'critical', value: 93 },
  ] as const;
  for (const c of cases) {
    it(`${c.spec} -> ${c.code} (${c.state}) during the window only`, async () => {
      const obs = await timeline(parseFaults(c.spec), HOST2, '1', RUN);
      expect(whenPresent(obs, c.code)).toEqual(offsets(WINDOW.fromMs, LAST_IN));
      const during = obs.find((o) => o.offsetMs === WINDOW.fromMs)!;
      expect(during.state).toBe(c.state);
      expect(during.health.sinceMs).toBe(START + WINDOW.fromMs);
      const reason = during.health.reasons.find((r) => r.code === c.code)!;
      expect(reason).toMatchObject({ severity: c.state, sinceMs: START + WINDOW.fromMs });
      // Throttle reasons carry the whole bit field (an idle GPU also has the ignored idle bit 0x1).
      if (c.code.startsWith('THROTTLE_')) expect(reason.value! & ~0x1).toBe(c.value);
      else expect(reason.value).toBe(c.value);
      // A reason keeps its first since while it lasts; it clears at the first scrape after the window.
      expect(
        obs.find((o) => o.offsetMs === LAST_IN)!.health.reasons.find((r) => r.code === c.code)!.sinceMs,
      ).toBe(START + WINDOW.fromMs);
      const after = obs.find((o) => o.offsetMs === WINDOW.toMs)!;
      expect(after.state).toBe('ok');
      expect(after.health.sinceMs).toBe(START + WINDOW.toMs);
      expect(obs.filter((o) => o.offsetMs < WINDOW.fromMs).every((o) => o.state === 'ok')).toBe(true);
    });
  }
});

describe('event faults: XIDs and counter increases are held for 5 min of sample time', () => {
  const cases = [
    {
      spec: 'xid:2/1@1m-2m:code=79',
      code: 'XID_ERROR',
      state: 'critical',
      message: /^XID 79: GPU has fallen off the bus/,
    },
    {
      spec: 'xid:2/1@1m-2m:code=13',
      code: 'XID_ERROR',
      state: 'warning',
      message: /^XID 13: graphics engine exception/,
    },
    {
      spec: 'ecc-dbe:2/1@1m-2m',
      code: 'ECC_DBE',
      state: 'critical',
      message: /double-bit ECC errors rose to 6$/,
    },
    {
      spec: 'retired-pages:2/1@1m-2m:count=2',
      code: 'RETIRED_PAGES',
      state: 'warning',
      message: /rose to 12$/,
    },
    { spec: 'row-remap:2/1@1m-2m', code: 'ROWS_REMAPPED', state: 'warning', message: /rose to 6$/ },
    {
      spec: 'pcie-replay:2/1@1m-2m',
      code: 'PCIE_REPLAYS',
      state: 'warning',
      message: /PCIe replays rose to \d+$/,
    },
    {
      spec: 'nvlink-error:2/1@1m-2m',
      code: 'NVLINK_ERRORS',
      state: 'warning',
      message: /NVLink CRC flit errors rose to 30$/,
    },
  ] as const;
  for (const c of cases) {
    it(`${c.spec} -> ${c.code} (${c.state}) from the window's start to 5 min after its last scrape`, async () => {
      const obs = await timeline(parseFaults(c.spec), HOST2, '1', RUN);
      expect(whenPresent(obs, c.code)).toEqual(offsets(WINDOW.fromMs, LAST_IN + HEALTH_HOLD_MS));
      const last = obs.find((o) => o.offsetMs === LAST_IN + HEALTH_HOLD_MS)!;
      expect(last.state).toBe(c.state);
      const reason = last.health.reasons.find((r) => r.code === c.code)!;
      expect(reason.message).toMatch(c.message);
      expect(reason.sinceMs).toBe(START + WINDOW.fromMs);
      expect(last.health.sinceMs).toBe(START + WINDOW.fromMs);
      const cleared = obs.find((o) => o.offsetMs === LAST_IN + HEALTH_HOLD_MS + INTERVAL)!;
      expect(cleared).toMatchObject({ state: 'ok', codes: [] });
      expect(cleared.health.sinceMs).toBe(START + cleared.offsetMs);
    });
  }

  it('the most severe reason decides the state; each reason keeps its own since', async () => {
    const obs = await timeline(
      parseFaults('thermal-throttle:2/1@1m-3m;xid:2/1@2m-150s:code=48'),
      HOST2,
      '1',
      RUN,
    );
    const at = (s: number) => obs.find((o) => o.offsetMs === s * 1000)!;
    expect(at(70)).toMatchObject({ state: 'warning', codes: ['THROTTLE_SW_THERMAL'] });
    expect(at(130)).toMatchObject({ state: 'critical', codes: ['XID_ERROR', 'THROTTLE_SW_THERMAL'] });
    expect(at(130).health.sinceMs).toBe(START + 120_000);
    expect(at(130).health.reasons.map((r) => r.sinceMs)).toEqual([START + 120_000, START + 60_000]);
    // The throttling ends at 3 min; the XID (last at 140 s) holds the GPU critical until 440 s.
    expect(at(180)).toMatchObject({ state: 'critical', codes: ['XID_ERROR'] });
    expect(at(450)).toMatchObject({ state: 'ok', codes: [] });
  });
});

describe('a GPU that stops reporting', () => {
  it('gone@1m-3m: STALE (by sample time) once its newest sample is older than STALE_AFTER, cleared when rows return', async () => {
    const obs = await timeline(parseFaults('gone:2/1@1m-3m'), HOST2, '1', RUN);
    // Newest sample at 50 s; stale when now - 50 s > 60 s, i.e. from 120 s; rows return at 180 s.
    expect(whenPresent(obs, 'STALE')).toEqual(offsets(120_000, 170_000));
    const stale = obs.find((o) => o.offsetMs === 120_000)!;
    expect(stale.state).toBe('warning');
    expect(stale.health.reasons[0]).toMatchObject({ severity: 'warning', sinceMs: START + 50_000 + 60_000 });
    expect(stale.health.sinceMs).toBe(START + 110_000);
    expect(obs.find((o) => o.offsetMs === 180_000)!.state).toBe('ok');
  });

  it('only the sample time counts: a GPU written just now with old samples is stale, fresh samples are not', async () => {
    const rig = new HealthRig();
    try {
      const scrapes = [...(await generatedScrapes({ hosts: 1, gpusPerHost: 1, durationMs: 30_000 }))];
      for (const [t, samples] of scrapes) await rig.write(t, samples);
      const newest = scrapes.at(-1)![0];
      rig.clock = newest + 60_000;
      expect((await rig.health('sim-dgx1-hgpu-001', '0')).state).toBe('ok');
      // The collector rewrites the record now (lastSeen moves), but its samples stay old.
      await rig.write(newest + 61_000, scrapes.at(-1)![1]);
      const status = await rig.reader.getGpu(CLUSTER, 'sim-dgx1-hgpu-001', '0');
      expect(status!.active).toBe(true);
      expect(status!.gpuHealth).toMatchObject({ state: 'warning', reasons: [{ code: 'STALE' }] });
    } finally {
      await rig.close();
    }
  });

  it('a scrape that leaves a GPU out marks it GPU_MISSING (critical) until a scrape shows it again', async () => {
    const rig = new HealthRig();
    try {
      const [t, samples] = [...(await generatedScrapes({ hosts: 1, gpusPerHost: 2 }))][0]!;
      const uuidOf = new Map(samples.map((s) => [s.gpuId, s.uuid]));
      const target = 'http://sim-dgx1-hgpu-001:9400/metrics';
      const host = 'sim-dgx1-hgpu-001';
      const presence = (gpus: string[], scrapeMs: number) => ({
        target,
        clusterId: CLUSTER,
        scrapeMs,
        gpus: gpus.map((gpuId) => ({ hostname: host, gpuId, uuid: uuidOf.get(gpuId)! })),
      });
      await rig.writer.apply({
        id: 'p0',
        source: target,
        samples,
        deadLetters: [],
        presence: presence(['0', '1'], t),
      });
      expect((await rig.health(host, '1')).state).toBe('ok');
      rig.clock = t + 10_000;
      await rig.writer.apply({
        id: 'p1',
        source: target,
        samples: [],
        deadLetters: [],
        presence: presence(['0'], t + 10_000),
      });
      const missing = await rig.health(host, '1');
      expect(missing).toMatchObject({
        state: 'critical',
        sinceMs: t + 10_000,
        reasons: [{ code: 'GPU_MISSING', severity: 'critical', sinceMs: t + 10_000 }],
      });
      expect((await rig.health(host, '0')).state).toBe('ok');
      await rig.writer.apply({
        id: 'p2',
        source: target,
        samples: [],
        deadLetters: [],
        presence: presence(['0', '1'], t + 20_000),
      });
      expect((await rig.health(host, '1')).state).toBe('ok');
    } finally {
      await rig.close();
    }
  });
});

describe('faults stay on their GPUs', () => {
  it('every other GPU of the fleet stays ok through every kind of fault', async () => {
    const rig = new HealthRig();
    try {
      const faults = parseFaults(
        'xid:2/1@1m-2m:code=79;ecc-dbe:2/1@1m-2m;overheat:2/1@1m-2m;thermal-throttle:2/1@1m-2m:bits=0x40;' +
          'pcie-replay:2/1@1m-2m;nvlink-error:2/1@1m-2m;gone:2/1@3m-4m;remap-failure:2/1@1m-2m',
      );
      const states = new Map<string, Set<string>>();
      for (const [t, samples] of await generatedScrapes({
        hosts: 2,
        gpusPerHost: 2,
        durationMs: 5 * 60_000,
        faults,
      })) {
        await rig.write(t, samples);
        for (const g of await rig.reader.listAllGpus()) {
          const key = `${g.hostname}/${g.gpuId}`;
          if (!states.has(key)) states.set(key, new Set());
          states.get(key)!.add(g.gpuHealth.state);
        }
      }
      expect(Object.fromEntries([...states].map(([k, v]) => [k, [...v].sort()]))).toEqual({
        'sim-dgx1-hgpu-001/0': ['ok'],
        'sim-dgx1-hgpu-001/1': ['ok'],
        'sim-dgx1-hgpu-002/0': ['ok'],
        'sim-dgx1-hgpu-002/1': ['critical', 'ok'],
      });
    } finally {
      await rig.close();
    }
  });
});

afterEach(() => undefined);
