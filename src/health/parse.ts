/**
 * Reads stored health back from a record value (JSON written by the hierarchy writer): checked
 * field by field, so a malformed value reads as "no stored health" rather than failing a read.
 */
import { HEALTH_REASON_CODES, type HealthReason, type StoredHealth } from './types.js';

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isFiniteNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const STATES = new Set(['ok', 'warning', 'critical']);
const CODES = new Set<string>(HEALTH_REASON_CODES);

function isReason(r: unknown): r is HealthReason {
  return (
    isObject(r) &&
    typeof r.code === 'string' &&
    CODES.has(r.code) &&
    (r.severity === 'warning' || r.severity === 'critical') &&
    typeof r.message === 'string' &&
    isFiniteNumber(r.sinceMs)
  );
}

/** The stored health in `v` (a record's `health`), or undefined when absent or malformed. */
export function parseStoredHealth(v: unknown): StoredHealth | undefined {
  if (!isObject(v) || typeof v.state !== 'string' || !STATES.has(v.state) || !isFiniteNumber(v.sinceMs))
    return undefined;
  if (!Array.isArray(v.reasons) || !isObject(v.counters)) return undefined;
  return { ...(v as unknown as StoredHealth), reasons: v.reasons.filter(isReason) };
}
