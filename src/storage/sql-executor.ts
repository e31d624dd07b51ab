/**
 * The small SQL surface the shared storage code needs from a backend (PGlite or node-postgres):
 * parameterised queries, multi-statement scripts and binary COPY into a table. Adapters wrap their
 * client (or their open transaction) in this interface so migrations, the write path and the query
 * builders are written once.
 */

/** Rows and affected-row count of one statement. */
export interface SqlResult<R> {
  rows: R[];
  rowCount: number;
}

/** A connection (or open transaction) that runs SQL. */
export interface SqlExecutor {
  /** One parameterised statement ($1, $2, ...). */
  query<R extends object = Record<string, unknown>>(
    text: string,
    params?: readonly unknown[],
  ): Promise<SqlResult<R>>;
  /** A script of several statements without parameters (migrations). */
  exec(sql: string): Promise<void>;
}

/** An executor inside an open transaction, able to bulk-load rows. */
export interface TransactionExecutor extends SqlExecutor {
  /**
   * `COPY table (columns) FROM STDIN WITH (FORMAT binary)` with `data` as the whole stream
   * (see {@link encodeSamplesCopy}); resolves to the number of rows copied.
   */
  copyBinary(table: string, columns: readonly string[], data: Uint8Array): Promise<number>;
}

/** SQLSTATE of a backend error, when it carries one. */
export function sqlState(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error) {
    const code = (error as { code: unknown }).code;
    if (typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code)) return code;
  }
  return undefined;
}

/** SQLSTATE unique_violation. */
export const UNIQUE_VIOLATION = '23505';

/** SQLSTATE numeric_value_out_of_range (a float8 sum past its range, among others). */
export const NUMERIC_VALUE_OUT_OF_RANGE = '22003';

/**
 * A numeric array as PostgreSQL array text (`{1,2.5,-3e+300}`), to pass as a `$n::float8[]` or
 * `$n::int4[]` parameter. Several times faster than letting the driver serialise a JS array
 * element by element (docs/performance.md). JS number text (`1e+300`, `Infinity`, `NaN`) is valid float8 input.
 */
export function numericArrayLiteral(values: ArrayLike<number>): string {
  return `{${Array.prototype.join.call(values, ',')}}`;
}
