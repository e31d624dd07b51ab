/**
 * Time partitions of the sample tables: which UTC days a batch needs, a short-lived cache of the
 * partitions known to exist (so the hot path skips the DDL round trip), and the retention plan
 * (which day partitions are wholly older than the bound). The DDL itself runs server-side in the
 * SECURITY DEFINER functions of migration 2 (`nexus_ensure_partitions`, `nexus_drop_partition`).
 *
 * Partition names are `<parent>_pYYYYMMDD` (UTC day); every sample table (`samples`,
 * `samples_1m`, `samples_1h`) has one partition per day plus `<parent>_default`.
 */
import type { SqlExecutor } from './sql-executor.js';

/** One UTC day in ms. */
export const DAY_MS = 86_400_000;

/** The day-partitioned sample tables, with their time column. */
export const PARTITIONED_TABLES = [
  { parent: 'samples', column: 'ts', kind: 'raw' },
  { parent: 'samples_1m', column: 'bucket', kind: 'rollup' },
  { parent: 'samples_1h', column: 'bucket', kind: 'rollup' },
] as const;

/** Name of a day-partitioned parent table. */
export type PartitionedTable = (typeof PARTITIONED_TABLES)[number]['parent'];

/** Days created ahead of time by a retention pass: today and the next three. */
export const DAYS_AHEAD = 3;

/** Most new days one batch may create partitions for; rows of further days use the default partition. */
export const MAX_NEW_DAYS_PER_BATCH = 366;

/** Start (ms) of the UTC day holding `ms`. */
export function dayStart(ms: number): number {
  return Math.floor(ms / DAY_MS) * DAY_MS;
}

/** `YYYYMMDD` of the UTC day starting at `dayMs` (years 0001-9999). */
export function dayLabel(dayMs: number): string {
  const d = new Date(dayMs);
  const y = String(d.getUTCFullYear()).padStart(4, '0');
  const m = String(d.getUTCMonth() + 1).padStart(2, '0');
  const day = String(d.getUTCDate()).padStart(2, '0');
  return `${y}${m}${day}`;
}

/** Partition name of `parent` for the UTC day starting at `dayMs`. */
export function partitionName(parent: PartitionedTable, dayMs: number): string {
  return `${parent}_p${dayLabel(dayMs)}`;
}

/** The day (start, ms) a partition name of `parent` covers; undefined for other names. */
export function partitionDay(parent: string, name: string): number | undefined {
  const m = /^(.*)_p(\d{4})(\d{2})(\d{2})$/.exec(name);
  if (!m || m[1] !== parent) return undefined;
  const d = new Date(0);
  d.setUTCFullYear(Number(m[2]), Number(m[3]) - 1, Number(m[4]));
  d.setUTCHours(0, 0, 0, 0);
  return d.getTime();
}

/** Distinct UTC day starts of `timestampsMs`, newest first. */
export function distinctDays(timestampsMs: Iterable<number>): number[] {
  const days = new Set<number>();
  for (const ts of timestampsMs) days.add(dayStart(ts));
  return [...days].sort((a, b) => b - a);
}

/**
 * Day partitions known to exist, for `ttlMs` after they were ensured. Another process may drop a
 * partition (retention) while it is cached here; a write to that day then lands in the DEFAULT
 * partition, and the next ensure of that day moves those rows into the new partition.
 */
export class PartitionCache {
  readonly #until = new Map<number, number>();

  constructor(private readonly ttlMs = 5 * 60_000) {}

  /** The days of `days` not known to exist now. */
  missing(days: readonly number[], nowMs = Date.now()): number[] {
    return days.filter((d) => (this.#until.get(d) ?? 0) <= nowMs);
  }

  /** Remember `days` as existing. */
  add(days: readonly number[], nowMs = Date.now()): void {
    if (this.#until.size > 10_000) this.#until.clear();
    for (const d of days) this.#until.set(d, nowMs + this.ttlMs);
  }

  /** Forget `days` (dropped by retention), or everything. */
  forget(days?: readonly number[]): void {
    if (days === undefined) this.#until.clear();
    else for (const d of days) this.#until.delete(d);
  }
}

/**
 * Ensure the day partitions of `days` exist in every sample table, in one short statement (its own
 * transaction, before the batch transaction: creating a partition takes locks on the parent).
 * Resolves to the number of partitions created.
 */
export async function ensurePartitions(db: SqlExecutor, days: readonly number[]): Promise<number> {
  if (days.length === 0) return 0;
  const { rows } = await db.query<{ n: number }>('SELECT nexus_ensure_partitions($1::float8[]) AS n', [
    [...days],
  ]);
  return rows[0]?.n ?? 0;
}

/** A partition of a sample table as listed from the catalog. */
export interface PartitionInfo {
  parent: PartitionedTable;
  name: string;
  /** Start of its UTC day (ms). */
  dayMs: number;
}

/** Every day partition of the sample tables (the default partitions excluded), newest first. */
export async function listPartitions(db: SqlExecutor): Promise<PartitionInfo[]> {
  const { rows } = await db.query<{ parent: string; name: string }>(
    `SELECT p.relname AS parent, c.relname AS name
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_class p ON p.oid = i.inhparent
WHERE i.inhparent IN (to_regclass('samples'), to_regclass('samples_1m'), to_regclass('samples_1h'))`,
  );
  const out: PartitionInfo[] = [];
  for (const r of rows) {
    const table = PARTITIONED_TABLES.find((t) => t.parent === r.parent);
    if (!table) continue;
    const dayMs = partitionDay(table.parent, r.name);
    if (dayMs !== undefined) out.push({ parent: table.parent, name: r.name, dayMs });
  }
  return out.sort((a, b) => b.dayMs - a.dayMs || (a.name < b.name ? -1 : 1));
}

/**
 * The instant retention measures back from, for one table: `nowMs`, or the end of the newest day
 * holding data when that is earlier. So replaying an old export (2025 timestamps) into an
 * otherwise idle store does not delete it on the next pass, while a live store (data up to now)
 * measures from now. `partitions` are that table's, newest first.
 */
export async function retentionAnchor(
  db: SqlExecutor,
  table: (typeof PARTITIONED_TABLES)[number],
  partitions: readonly PartitionInfo[],
  nowMs: number,
): Promise<number> {
  for (const p of partitions) {
    if (p.dayMs > nowMs) continue; // ahead-of-time partitions say nothing about the data
    // Through the parent with a range (pruned to this partition): the caller may only have
    // rights on the parent.
    const { rows } = await db.query<{ found: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM ${table.parent} WHERE ${table.column} >= to_timestamp($1::float8 / 1000)
  AND ${table.column} < to_timestamp($2::float8 / 1000)) AS found`,
      [p.dayMs, p.dayMs + DAY_MS],
    );
    if (rows[0]?.found) return Math.min(nowMs, p.dayMs + DAY_MS);
  }
  return nowMs;
}

/** Partitions wholly older than `cutoffMs` (their day ends at or before it). */
export function expiredPartitions(partitions: readonly PartitionInfo[], cutoffMs: number): PartitionInfo[] {
  return partitions.filter((p) => p.dayMs + DAY_MS <= cutoffMs);
}
