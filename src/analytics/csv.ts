/**
 * CSV export of analytics rows (RFC 4180: comma-separated, CRLF line ends, fields quoted when they
 * hold a comma, quote or line break; header row = the JSON field names, in order).
 */

function field(v: unknown): string {
  const s = v === undefined || v === null ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** `rows` as CSV text with the given columns. */
export function toCsv(columns: readonly string[], rows: ReadonlyArray<Record<string, unknown>>): string {
  const lines = [columns.map(field).join(',')];
  for (const r of rows) lines.push(columns.map((c) => field(r[c])).join(','));
  return `${lines.join('\r\n')}\r\n`;
}
