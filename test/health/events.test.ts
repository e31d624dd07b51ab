// Health in the event stream's building blocks: a GPU record write that changed its health decodes
// as GPU_HEALTH with the health (state, since, reasons; no bookkeeping), other writes as GPU_UPDATE;
// snapshots carry health too; an eventTypes filter of GPU_UPDATE also receives GPU_HEALTH, and a
// metrics filter lets GPU_HEALTH through.
import { describe, expect, it } from 'vitest';
import { decodeWatchEvent, snapshotEvents } from '../../src/events/decode.js';
import { compileFilter } from '../../src/events/filter.js';
import type { TelemetryEvent } from '../../src/events/types.js';
import { gpuKey } from '../../src/hierarchy/paths.js';
import { mergeSamples } from '../../src/hierarchy/writer.js';
import type { Sample } from '../../src/domain/types.js';

const T = Date.UTC(2026, 0, 1);
const sample = (metric: string, value: number, at: number): Sample => ({
  clusterId: 'c',
  hostname: 'h',
  gpuId: '0',
  uuid: 'GPU-1',
  device: 'nvidia0',
  modelName: 'NVIDIA H100 80GB HBM3',
  metric,
  value,
  timestampMs: at,
  labels: {},
  container: '',
  pod: '',
  namespace: '',
});

function put(record: unknown, revision: number): TelemetryEvent {
  const kv = {
    key: gpuKey('c', 'h', '0'),
    value: JSON.stringify(record),
    createRevision: 1,
    modRevision: revision,
    version: 1,
  };
  return decodeWatchEvent({ type: 'put', kv, revision }, T, 0)!;
}

describe('health in events', () => {
  it('a write that changed the health is GPU_HEALTH, the next one GPU_UPDATE', () => {
    const first = mergeSamples(undefined, [sample('DCGM_FI_DEV_GPU_TEMP', 50, T)], T);
    expect(put(first, 2)).toMatchObject({ eventType: 'GPU_UPDATE', health: { state: 'ok', reasons: [] } });
    const hot = mergeSamples(first, [sample('DCGM_FI_DEV_GPU_TEMP', 90, T + 10_000)], T + 10_000);
    const event = put(hot, 3);
    expect(event.eventType).toBe('GPU_HEALTH');
    expect(event.health).toEqual({
      state: 'critical',
      sinceMs: T + 10_000,
      reasons: [
        {
          code: 'OVERHEATING',
          severity: 'critical',
          message: 'GPU temperature 90 C is at or above the 87 C slowdown limit of NVIDIA H100 80GB HBM3',
          sinceMs: T + 10_000,
          field: 'DCGM_FI_DEV_GPU_TEMP',
          value: 90,
        },
      ],
    });
    const still = mergeSamples(hot, [sample('DCGM_FI_DEV_GPU_TEMP', 91, T + 20_000)], T + 20_000);
    expect(put(still, 4)).toMatchObject({
      eventType: 'GPU_UPDATE',
      health: { state: 'critical', sinceMs: T + 10_000 },
    });
    const cool = mergeSamples(still, [sample('DCGM_FI_DEV_GPU_TEMP', 60, T + 30_000)], T + 30_000);
    expect(put(cool, 5)).toMatchObject({
      eventType: 'GPU_HEALTH',
      health: { state: 'ok', sinceMs: T + 30_000 },
    });
    const kv = {
      key: gpuKey('c', 'h', '0'),
      value: JSON.stringify(hot),
      createRevision: 1,
      modRevision: 3,
      version: 2,
    };
    expect(snapshotEvents([kv], 9)[0]).toMatchObject({
      eventType: 'SNAPSHOT',
      health: { state: 'critical' },
    });
  });

  it('filters: GPU_UPDATE includes GPU_HEALTH; GPU_HEALTH alone excludes plain updates; metrics filters pass it', () => {
    const base = {
      revision: 1,
      clusterId: 'c',
      hostId: 'h',
      gpuIndex: '0',
      uuid: 'GPU-1',
      timestampMs: T,
      observedAtMs: T,
    };
    const update: TelemetryEvent = {
      ...base,
      eventType: 'GPU_UPDATE',
      metrics: { DCGM_FI_DEV_GPU_TEMP: { value: 1, timestampMs: T } },
    };
    const health: TelemetryEvent = {
      ...base,
      eventType: 'GPU_HEALTH',
      metrics: { DCGM_FI_DEV_GPU_TEMP: { value: 1, timestampMs: T } },
    };
    const updates = compileFilter({ eventTypes: ['GPU_UPDATE'] });
    expect([updates.matches(update), updates.matches(health)]).toEqual([true, true]);
    const healthOnly = compileFilter({ eventTypes: ['GPU_HEALTH'] });
    expect([healthOnly.matches(update), healthOnly.matches(health)]).toEqual([false, true]);
    const power = compileFilter({ metrics: ['powerDraw'] });
    expect([power.matches(update), power.matches(health)]).toEqual([false, true]);
  });
});
