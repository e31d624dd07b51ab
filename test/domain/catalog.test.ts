import { describe, expect, it } from 'vitest';
import { DCGM_FIELDS, fieldByFriendlyName, fieldInfo } from '../../src/domain/catalog.js';

describe('DCGM field catalog', () => {
  it('maps the ten fields of the bundled sample to the design names and units', () => {
    const expected: Record<string, [string, string]> = {
      DCGM_FI_DEV_GPU_UTIL: ['gpuUtilization', '%'],
      DCGM_FI_DEV_MEM_COPY_UTIL: ['memCopyUtilization', '%'],
      DCGM_FI_DEV_GPU_TEMP: ['temperature', 'C'],
      DCGM_FI_DEV_POWER_USAGE: ['powerDraw', 'W'],
      DCGM_FI_DEV_SM_CLOCK: ['smClock', 'MHz'],
      DCGM_FI_DEV_MEM_CLOCK: ['memClock', 'MHz'],
      DCGM_FI_DEV_FB_USED: ['fbUsed', 'MiB'],
      DCGM_FI_DEV_FB_FREE: ['fbFree', 'MiB'],
      DCGM_FI_DEV_ENC_UTIL: ['encUtil', '%'],
      DCGM_FI_DEV_DEC_UTIL: ['decUtil', '%'],
    };
    for (const [field, [friendly, unit]] of Object.entries(expected)) {
      expect(fieldInfo(field)).toMatchObject({ friendlyName: friendly, unit });
    }
  });

  it('knows counters from gauges and has unique names', () => {
    expect(fieldInfo('DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION')?.kind).toBe('counter');
    expect(fieldInfo('DCGM_FI_DEV_GPU_TEMP')?.kind).toBe('gauge');
    expect(new Set(DCGM_FIELDS.map((i) => i.field)).size).toBe(DCGM_FIELDS.length);
    expect(new Set(DCGM_FIELDS.map((i) => i.friendlyName)).size).toBe(DCGM_FIELDS.length);
    expect(fieldByFriendlyName('powerDraw')?.field).toBe('DCGM_FI_DEV_POWER_USAGE');
    expect(fieldInfo('DCGM_FI_SOMETHING_NEW')).toBeUndefined();
  });
});
