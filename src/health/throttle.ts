/**
 * The clock-throttle reasons bit field (DCGM_FI_DEV_CLOCK_THROTTLE_REASONS, renamed
 * DCGM_FI_DEV_CLOCKS_EVENT_REASONS in newer DCGM): which bits hurt health and how much. Idle,
 * application clocks, sync boost and display clock bits are normal operation and ignored.
 */
import type { HealthSeverity } from './types.js';

/** One throttle reason bit that counts for health. */
export interface ThrottleBit {
  bit: number;
  code: string;
  severity: HealthSeverity;
  meaning: string;
}

/** The throttle reason bits that count for health, lowest bit first. */
export const THROTTLE_BITS: readonly ThrottleBit[] = [
  {
    bit: 0x4,
    code: 'THROTTLE_SW_POWER_CAP',
    severity: 'warning',
    meaning: 'clocks lowered to stay under the power cap',
  },
  {
    bit: 0x8,
    code: 'THROTTLE_HW_SLOWDOWN',
    severity: 'warning',
    meaning: 'hardware slowdown (temperature or power) halved the clocks or more',
  },
  {
    bit: 0x20,
    code: 'THROTTLE_SW_THERMAL',
    severity: 'warning',
    meaning: 'clocks lowered by the driver to cool the GPU',
  },
  {
    bit: 0x40,
    code: 'THROTTLE_HW_THERMAL',
    severity: 'critical',
    meaning: 'hardware thermal slowdown: the GPU is too hot',
  },
  {
    bit: 0x80,
    code: 'THROTTLE_HW_POWER_BRAKE',
    severity: 'critical',
    meaning: 'hardware power brake: an external power-brake signal cut the clocks',
  },
];

/** Fields that carry the bit field (old and new DCGM names). */
export const THROTTLE_FIELDS = [
  'DCGM_FI_DEV_CLOCK_THROTTLE_REASONS',
  'DCGM_FI_DEV_CLOCKS_EVENT_REASONS',
] as const;

/** The health-relevant bits set in `value`. */
export function throttleBits(value: number): ThrottleBit[] {
  if (!Number.isInteger(value) || value <= 0) return [];
  return THROTTLE_BITS.filter((b) => (value & b.bit) !== 0);
}
