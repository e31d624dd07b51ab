/**
 * Encoder for PostgreSQL's binary COPY format, for the (series_id int4, ts timestamptz,
 * value float8) rows of `samples`. Binary COPY needs no server-side text parsing of timestamps, so it
 * beats text COPY (docs/performance.md).
 */

/** 1970-01-01 minus 2000-01-01 (PostgreSQL's timestamp epoch), in ms. */
const PG_EPOCH_MS = 946_684_800_000;
const HEADER = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
const HEADER_SIZE = HEADER.length + 8; // signature + flags int32 + extension length int32
const ROW_SIZE = 2 + (4 + 4) + (4 + 8) + (4 + 8);
const TWO_32 = 2 ** 32;

/**
 * One COPY stream of `ids.length` rows, from offset `start` to `end` (exclusive) of the arrays.
 * Timestamps are ms since the Unix epoch and are stored with microsecond resolution.
 */
export function encodeSamplesCopy(
  seriesIds: Int32Array,
  timestampsMs: Float64Array,
  values: Float64Array,
  start = 0,
  end = seriesIds.length,
): Buffer {
  const rows = end - start;
  const buf = Buffer.allocUnsafe(HEADER_SIZE + rows * ROW_SIZE + 2);
  HEADER.copy(buf, 0);
  let o = HEADER.length;
  o = buf.writeInt32BE(0, o);
  o = buf.writeInt32BE(0, o);
  for (let i = start; i < end; i++) {
    o = buf.writeInt16BE(3, o);
    o = buf.writeInt32BE(4, o);
    o = buf.writeInt32BE(seriesIds[i] as number, o);
    // int64 microseconds since 2000-01-01, written as two 32-bit halves (exact below 2^53).
    const us = Math.round(((timestampsMs[i] as number) - PG_EPOCH_MS) * 1000);
    const hi = Math.floor(us / TWO_32);
    o = buf.writeInt32BE(8, o);
    o = buf.writeInt32BE(hi, o);
    o = buf.writeUInt32BE(us - hi * TWO_32, o);
    o = buf.writeInt32BE(8, o);
    o = buf.writeDoubleBE(values[i] as number, o);
  }
  buf.writeInt16BE(-1, o);
  return buf;
}
