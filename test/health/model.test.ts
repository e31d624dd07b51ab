// The health model's tables and rules on their own: XID meanings and severities, throttle bits,
// model temperature limits, counter increases against the previous evaluation (and counter resets),
// reasons keeping their since, STALE judged by sample time at read time.
import { describe, expect, it } from 'vitest';
import { DEFAULT_SLOWDOWN_C, slowdownTemperature } from '../../src/health/limits.js';
import { evaluateHealth, HEALTH_HOLD_MS, withStaleness } from '../../src/health/model.js';
import { parseStoredHealth } from '../../src/health/parse.js';
import { THROTTLE_BITS, throttleBits } from '../../src/health/throttle.js';
import { XID_CATALOG, xidInfo } from '../../src/health/xid.js';

const T = Date.UTC(2026, 0, 1);
const m = (entries: Record<string, number>, at = T) =>
  Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { value: v, timestampMs: at }]));

describe('the XID catalog', () => {
  it('covers the common XIDs with a meaning and a severity each', () => {
    const codes = XID_CATALOG.map((x) => x.code);
    expect(codes).toEqual([13, 31, 43, 45, 48, 61, 62, 63, 64, 68, 69, 74, 79, 92, 94, 95, 119, 120]);
    for (const x of XID_CATALOG) {
      expect(x.meaning.length, String(x.code)).toBeGreaterThan(20);
      expect(['warning', 'critical']).toContain(x.severity);
    }
    expect(xidInfo(79)).toMatchObject({
      severity: 'critical',
      meaning: expect.stringMatching(/fallen off the bus/),
    });
    expect(xidInfo(48)).toMatchObject({
      severity: 'critical',
      meaning: expect.stringMatching(/double-bit ECC/),
    });
    expect(xidInfo(13).severity).toBe('warning');
    expect(xidInfo(9999)).toMatchObject({
      code: 9999,
      severity: 'warning',
      meaning: expect.stringMatching(/not in the catalog/),
    });
  });
});

describe('throttle reason bits', () => {
  it('keeps only the bits that count for health', () => {
    expect(THROTTLE_BITS.map((b) => b.bit)).toEqual([0x4, 0x8, 0x20, 0x40, 0x80]);
    expect(throttleBits(0x1 | 0x2 | 0x10 | 0x100)).toEqual([]);
    expect(throttleBits(0x1 | 0x4 | 0x40).map((b) => [b.code, b.severity])).toEqual([
      ['THROTTLE_SW_POWER_CAP', 'warning'],
      ['THROTTLE_HW_THERMAL', 'critical'],
    ]);
    expect(throttleBits(-1)).toEqual([]);
    expect(throttleBits(1.5)).toEqual([]);
  });

  it('reads the newer DCGM name of the field too', () => {
    const h = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_CLOCKS_EVENT_REASONS: 0x80 }),
      modelName: '',
      lastSampleMs: T,
    });
    expect(h.reasons.map((r) => [r.code, r.field])).toEqual([
      ['THROTTLE_HW_POWER_BRAKE', 'DCGM_FI_DEV_CLOCKS_EVENT_REASONS'],
    ]);
  });
});

describe('temperature limits by model', () => {
  it('uses the model table, 85 C for unknown models', () => {
    expect(DEFAULT_SLOWDOWN_C).toBe(85);
    expect(slowdownTemperature('NVIDIA H100 80GB HBM3')).toBe(87);
    expect(slowdownTemperature('NVIDIA A100-SXM4-80GB')).toBe(85);
    expect(slowdownTemperature('Some Future GPU')).toBe(85);
    const at = (temp: number, model: string) =>
      evaluateHealth({ metrics: m({ DCGM_FI_DEV_GPU_TEMP: temp }), modelName: model, lastSampleMs: T }).state;
    expect([
      at(86, 'NVIDIA H100 80GB HBM3'),
      at(87, 'NVIDIA H100 80GB HBM3'),
      at(85, ''),
      at(84.9, ''),
    ]).toEqual(['ok', 'critical', 'critical', 'ok']);
  });
});

describe('evaluation against the previous one', () => {
  it('a counter seen for the first time, however high, is no increase; a rise is, for the hold window', () => {
    const first = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_PCIE_REPLAY_COUNTER: 40 }),
      modelName: '',
      lastSampleMs: T,
    });
    expect(first).toMatchObject({ state: 'ok', reasons: [] });
    expect(first.counters.DCGM_FI_DEV_PCIE_REPLAY_COUNTER).toEqual({ value: 40, timestampMs: T });
    const rose = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_PCIE_REPLAY_COUNTER: 41 }, T + 10_000),
      modelName: '',
      lastSampleMs: T + 10_000,
      previous: first,
    });
    expect(rose).toMatchObject({
      state: 'warning',
      sinceMs: T + 10_000,
      reasons: [{ code: 'PCIE_REPLAYS', value: 41 }],
    });
    const held = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_PCIE_REPLAY_COUNTER: 41 }, T + 10_000 + HEALTH_HOLD_MS),
      modelName: '',
      lastSampleMs: T + 10_000 + HEALTH_HOLD_MS,
      previous: rose,
    });
    expect(held).toMatchObject({ state: 'warning', sinceMs: T + 10_000, reasons: [{ sinceMs: T + 10_000 }] });
    const over = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_PCIE_REPLAY_COUNTER: 41 }, T + 20_000 + HEALTH_HOLD_MS),
      modelName: '',
      lastSampleMs: T + 20_000 + HEALTH_HOLD_MS,
      previous: held,
    });
    expect(over).toMatchObject({ state: 'ok', sinceMs: T + 20_000 + HEALTH_HOLD_MS, reasons: [] });
  });

  it('a counter that goes down (a reset) is no increase', () => {
    const first = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_ECC_DBE_VOL_TOTAL: 5 }),
      modelName: '',
      lastSampleMs: T,
    });
    const reset = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_ECC_DBE_VOL_TOTAL: 0 }, T + 10_000),
      modelName: '',
      lastSampleMs: T + 10_000,
      previous: first,
    });
    expect(reset.state).toBe('ok');
    expect(reset.counters.DCGM_FI_DEV_ECC_DBE_VOL_TOTAL!.value).toBe(0);
  });

  it('an XID between two evaluations counts even when the latest value is 0 again', () => {
    const h = evaluateHealth({
      metrics: m({ DCGM_FI_DEV_XID_ERRORS: 0 }, T + 20_000),
      modelName: '',
      lastSampleMs: T + 20_000,
      xids: [{ code: 74, atMs: T + 10_000 }],
    });
    expect(h).toMatchObject({ state: 'critical', lastXid: { code: 74, atMs: T + 10_000 } });
    expect(h.reasons[0]).toMatchObject({
      code: 'XID_ERROR',
      value: 74,
      sinceMs: T + 10_000,
      message: expect.stringMatching(/^XID 74: NVLink/),
    });
  });

  it('a stored health that is not one reads as none', () => {
    expect(parseStoredHealth({ state: 'broken', sinceMs: 1, reasons: [], counters: {} })).toBeUndefined();
    expect(parseStoredHealth('x')).toBeUndefined();
    const kept = parseStoredHealth({
      state: 'warning',
      sinceMs: 1,
      counters: {},
      reasons: [{ code: 'STALE', severity: 'warning', message: 'm', sinceMs: 1 }, { code: 'NOPE' }],
    });
    expect(kept!.reasons.map((r) => r.code)).toEqual(['STALE']);
  });
});

describe('STALE is judged by sample time at read time', () => {
  const ok = evaluateHealth({ metrics: m({ DCGM_FI_DEV_GPU_TEMP: 40 }), modelName: '', lastSampleMs: T });

  it('adds STALE once the newest sample is older than staleAfter, from lastSample + staleAfter', () => {
    expect(withStaleness(ok, T, T + 60_000, 60_000)).toEqual({ state: 'ok', sinceMs: T, reasons: [] });
    const stale = withStaleness(ok, T, T + 60_001, 60_000);
    expect(stale).toMatchObject({
      state: 'warning',
      sinceMs: T + 60_000,
      reasons: [{ code: 'STALE', sinceMs: T + 60_000 }],
    });
    expect(stale.reasons[0]!.message).toBe('no sample for 60 s (newest sample 2026-01-01T00:00:00.000Z)');
  });

  it('a critical GPU stays critical (since unchanged), with STALE after its critical reasons', () => {
    const hot = evaluateHealth({ metrics: m({ DCGM_FI_DEV_GPU_TEMP: 99 }), modelName: '', lastSampleMs: T });
    const stale = withStaleness(hot, T, T + 10 * 60_000, 60_000);
    expect(stale.state).toBe('critical');
    expect(stale.sinceMs).toBe(T);
    expect(stale.reasons.map((r) => r.code)).toEqual(['OVERHEATING', 'STALE']);
    expect('counters' in stale).toBe(false);
  });
});
