/**
 * DCGM row validation: maps header names to columns (so reordered or extra columns still work),
 * turns each split record into a {@link Sample} or a {@link DeadLetter} with a named reason, and
 * parses RFC 3339 timestamps and numeric values strictly (no NaN, no Infinity, no hex, no Feb 30).
 *
 * Validation refuses up front what the sample store cannot hold, so one row never fails a whole
 * batch in the store: sample times (after restamping) outside years 0001-9999, identity fields the
 * store indexes longer than {@link MAX_IDENTITY_FIELD_BYTES}, and malformed `labels_raw`.
 */
import type { DeadLetter, Sample } from '../domain/types.js';
import { MAX_DEFERRED_FIELDS, unescapeField, type CsvRecord } from './csv-records.js';
import { parseLabels } from './labels.js';

/** The columns of a DCGM CSV export, in the order dcgm-exporter writes them. */
export const DCGM_COLUMNS = [
  'timestamp',
  'metric_name',
  'gpu_id',
  'device',
  'uuid',
  'modelName',
  'Hostname',
  'container',
  'pod',
  'namespace',
  'value',
  'labels_raw',
] as const;

/** One DCGM column name. */
export type DcgmColumn = (typeof DCGM_COLUMNS)[number];

/** Columns a source must have; the others default to the empty string when absent. */
export const REQUIRED_COLUMNS: readonly DcgmColumn[] = [
  'timestamp',
  'metric_name',
  'gpu_id',
  'uuid',
  'Hostname',
  'value',
];

/** Every dead-letter reason code the ingest path produces, with what it means. */
export const DEAD_LETTER_REASONS = {
  column_count: 'the row has a different number of fields than the header',
  unterminated_quote: 'a quoted field is never closed (it swallowed a line break or ran to the end of input)',
  malformed_quote: 'a closing quote is followed by something other than a comma or line end',
  oversized_field: 'a field is longer than the configured maximum (maxFieldBytes)',
  oversized_record: 'a record is longer than the configured maximum (maxRecordBytes)',
  bad_utf8: 'the line contains bytes that are not valid UTF-8',
  missing_field: 'a required field (timestamp, metric_name, gpu_id, uuid, Hostname, value) is empty',
  bad_gpu_id: 'gpu_id is not a non-negative integer index',
  bad_timestamp: 'the timestamp is not a valid RFC 3339 date-time',
  future_timestamp:
    'the timestamp (after restamping with --timestamps now) is further in the future than the tolerance allows',
  non_numeric_value: 'the value is not a decimal number',
  non_finite_value: 'the value is NaN or infinite',
  unterminated_record:
    'the input ended inside the last record (no line terminator after it), so it may be cut short',
  timestamp_out_of_range:
    'the sample time (after restamping with --timestamps now) is outside the years 0001-9999 the store can hold',
  identity_field_too_long:
    'an identity field the store indexes (Hostname, metric_name, gpu_id, uuid, device, modelName, container, pod, namespace) is longer than 512 bytes of UTF-8',
  bad_labels:
    'labels_raw is not a well-formed label set (a quote never closed, a name without "=", text after a value, a repeated name)',
  bad_header:
    'a file of a directory source has no usable DCGM header (or is not DCGM CSV); the file is skipped, the directory goes on',
  unreadable_source:
    'a file of a directory source cannot be read (vanished, a directory, a dangling link, no permission); the file is skipped, the directory goes on',
} as const;

/** A dead-letter reason code. */
export type DeadLetterReason = keyof typeof DEAD_LETTER_REASONS;

/** Result of validating one record: a sample with its line, or a dead letter. */
export type RowResult = { ok: true; sample: Sample; line: number } | { ok: false; deadLetter: DeadLetter };

/** Column positions by name; -1 when the column is absent. */
export type ColumnIndex = Record<DcgmColumn, number>;

/** Outcome of {@link checkHeader}. */
export type HeaderCheck =
  { ok: true; columns: ColumnIndex; width: number } | { ok: false; missing: DcgmColumn[]; detail: string };

/** Longest `raw` kept on a dead letter (characters). */
export const MAX_DEAD_LETTER_RAW = 1000;

/**
 * Largest UTF-8 size of each identity field the store indexes (Hostname, metric_name, gpu_id, uuid,
 * device, modelName, container, pod, namespace). PostgreSQL btree index entries are limited to about
 * 2,700 bytes and the widest series index holds four of these fields (4 x 512 < 2,700); a longer
 * field makes the row an `identity_field_too_long` dead letter.
 */
export const MAX_IDENTITY_FIELD_BYTES = 512;

/** The columns whose values the store indexes, each bounded by {@link MAX_IDENTITY_FIELD_BYTES}. */
export const IDENTITY_COLUMNS: readonly DcgmColumn[] = [
  'Hostname',
  'metric_name',
  'gpu_id',
  'uuid',
  'device',
  'modelName',
  'container',
  'pod',
  'namespace',
];

/** Earliest sample time the store holds: 0001-01-01T00:00:00.000Z. */
export const MIN_TIMESTAMP_MS = -62_135_596_800_000;
/** Latest sample time the store holds: 9999-12-31T23:59:59.999Z. */
export const MAX_TIMESTAMP_MS = 253_402_300_799_999;

/** Default for {@link RowValidatorOptions.futureToleranceMs}: one day. */
export const DEFAULT_FUTURE_TOLERANCE_MS = 24 * 60 * 60 * 1000;

/**
 * Map header fields to DCGM columns by name (case-insensitive, surrounding spaces ignored).
 * Unknown columns are ignored; a missing required column fails the check.
 */
export function checkHeader(fields: readonly string[]): HeaderCheck {
  const byName = new Map<string, number>();
  fields.forEach((f, i) => {
    const key = f.trim().toLowerCase();
    if (!byName.has(key)) byName.set(key, i);
  });
  const columns = {} as ColumnIndex;
  const missing: DcgmColumn[] = [];
  for (const name of DCGM_COLUMNS) {
    const index = byName.get(name.toLowerCase()) ?? -1;
    columns[name] = index;
    if (index === -1 && REQUIRED_COLUMNS.includes(name)) missing.push(name);
  }
  if (missing.length > 0) {
    return {
      ok: false,
      missing,
      detail: `header is missing required column(s) ${missing.join(', ')}; expected ${DCGM_COLUMNS.join(',')}`,
    };
  }
  return { ok: true, columns, width: fields.length };
}

/** The column index of the standard DCGM header (used for headerless input). */
export function defaultColumns(): ColumnIndex {
  const columns = {} as ColumnIndex;
  DCGM_COLUMNS.forEach((name, i) => (columns[name] = i));
  return columns;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function digits(s: string, at: number, count: number): number {
  let v = 0;
  for (let k = at; k < at + count; k++) {
    const d = s.charCodeAt(k) - 48;
    if (d < 0 || d > 9) return -1;
    v = v * 10 + d;
  }
  return v;
}

/** Milliseconds in 400 Gregorian years (146,097 days): the calendar repeats after it. */
const GREGORIAN_CYCLE_MS = 146_097 * 86_400_000;

/**
 * Parse an RFC 3339 date-time (`2025-07-18T20:42:34Z`, `...34.123+02:00`; `t`, `z` and a space
 * separator accepted) to epoch milliseconds. Fractions beyond milliseconds are truncated. Years
 * 0000-0099 are taken literally (proleptic Gregorian), not as 1900-1999 like `Date.UTC` would; the
 * result may lie outside {@link MIN_TIMESTAMP_MS}..{@link MAX_TIMESTAMP_MS} (year 0000, an offset
 * across the ends), which the row validator refuses as `timestamp_out_of_range`.
 * @returns the time in ms, or NaN when the text is not a valid RFC 3339 date-time.
 */
export function parseRfc3339(s: string): number {
  const n = s.length;
  if (n < 20) return NaN;
  const year = digits(s, 0, 4);
  const month = digits(s, 5, 2);
  const day = digits(s, 8, 2);
  const hour = digits(s, 11, 2);
  const minute = digits(s, 14, 2);
  const second = digits(s, 17, 2);
  const sep = s.charCodeAt(10);
  if (
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    hour < 0 ||
    hour > 23 ||
    minute < 0 ||
    minute > 59 ||
    second < 0 ||
    second > 60 ||
    s.charCodeAt(4) !== 45 ||
    s.charCodeAt(7) !== 45 ||
    (sep !== 84 && sep !== 116 && sep !== 32) ||
    s.charCodeAt(13) !== 58 ||
    s.charCodeAt(16) !== 58
  ) {
    return NaN;
  }
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const dim = month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!;
  if (day > dim) return NaN;
  let i = 19;
  let ms = 0;
  if (s.charCodeAt(i) === 46 /* . */) {
    i++;
    const start = i;
    let scale = 100;
    while (i < n) {
      const d = s.charCodeAt(i) - 48;
      if (d < 0 || d > 9) break;
      ms += d * scale;
      scale /= 10;
      i++;
    }
    if (i === start) return NaN;
    ms = Math.floor(ms);
  }
  let offsetMin = 0;
  const z = s.charCodeAt(i);
  if (z === 90 || z === 122) {
    i++;
  } else if (z === 43 || z === 45) {
    const oh = digits(s, i + 1, 2);
    const om = digits(s, i + 4, 2);
    if (oh < 0 || oh > 23 || om < 0 || om > 59 || s.charCodeAt(i + 3) !== 58) return NaN;
    offsetMin = (oh * 60 + om) * (z === 43 ? 1 : -1);
    i += 6;
  } else {
    return NaN;
  }
  if (i !== n) return NaN;
  // A leap second (":60") is folded into the next second, as Date does not represent it.
  // Date.UTC reads years 0-99 as 1900-1999: compute them 400 years later and move back one cycle.
  const utc =
    year < 100
      ? Date.UTC(year + 400, month - 1, day, hour, minute, second, ms) - GREGORIAN_CYCLE_MS
      : Date.UTC(year, month - 1, day, hour, minute, second, ms);
  return utc - offsetMin * 60_000;
}

const NON_FINITE = /^[+-]?(nan|inf|infinity)$/i;

/** Reason a value string is not a usable number, or null when it is one (see {@link parseValue}). */
type ValueProblem = 'non_numeric_value' | 'non_finite_value';

/**
 * Parse a decimal value strictly: digits, sign, point and exponent only (no hex, no empty string).
 * @returns the number, or the reason it is refused.
 */
export function parseValue(s: string): number | ValueProblem {
  const n = s.length;
  let plain = n > 0;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(k);
    // 0-9 . - + e E
    if (!((c >= 48 && c <= 57) || c === 46 || c === 45 || c === 43 || c === 101 || c === 69)) {
      plain = false;
      break;
    }
  }
  if (!plain) {
    const t = s.trim();
    if (NON_FINITE.test(t)) return 'non_finite_value';
    if (t.length === 0 || t.length === n || !/^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$/.test(t))
      return 'non_numeric_value';
    return parseValue(t);
  }
  const v = Number(s);
  if (Number.isNaN(v)) return 'non_numeric_value';
  if (!Number.isFinite(v)) return 'non_finite_value';
  return v;
}

/** True when `s` is a non-negative integer index (`"0"`, `"12"`). */
export function isIndex(s: string): boolean {
  const n = s.length;
  if (n === 0 || n > 6) return false;
  for (let k = 0; k < n; k++) {
    const c = s.charCodeAt(k);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** Options of {@link RowValidator}. */
export interface RowValidatorOptions {
  /** Source name recorded on dead letters (file path, `stdin`, ...). */
  source: string;
  /** Cluster the samples belong to (CLUSTER_ID). */
  clusterId: string;
  /**
   * `original` (default) keeps the row's timestamp; `now` shifts every row of this source pass by one
   * offset, fixed at the first row so that it lands on the processing time: rows keep their spacing,
   * so samples of one series stay distinct. The row's own timestamp must still be valid RFC 3339;
   * the restamped time is what is checked against the store's range (years 0001-9999) and the future
   * tolerance, so a row far from the first one becomes a dead letter instead of failing its batch.
   */
  timestamps?: 'original' | 'now';
  /** How far ahead of now a timestamp may be before it is `future_timestamp`. Default one day. */
  futureToleranceMs?: number;
}

/** Largest number of series whose identity strings and labels are cached. */
const SERIES_CACHE_LIMIT = 100_000;

/** Identity of one series as last seen: detached strings and the parsed, frozen labels. */
interface SeriesEntry {
  hostname: string;
  gpuId: string;
  uuid: string;
  device: string;
  modelName: string;
  metric: string;
  container: string;
  pod: string;
  namespace: string;
  /** `labels_raw` exactly as it appeared in the record (possibly still CSV-escaped). */
  labelsText: string;
  labels: Readonly<Record<string, string>>;
  /** Row text around the timestamp and value fields, when the row was fully quoted (see segments()). */
  seg0: string | null;
  seg1: string | null;
  seg2: string | null;
  /** The series that followed this one last time (exports list series in a stable order). */
  next: SeriesEntry | null;
}

/**
 * Validates split records against a header's column map.
 *
 * Keeps a bounded series cache (by uuid, then metric): rows of a known series reuse its identity
 * strings and parsed labels, so a sample neither re-parses `labels_raw` nor pins the large decoded
 * input block its fields were sliced from. Labels objects are shared and frozen.
 */
export class RowValidator {
  private readonly columns: ColumnIndex;
  private readonly width: number;
  private readonly source: string;
  private readonly clusterId: string;
  private readonly restamp: boolean;
  /** `now` mode: shift applied to every row, fixed at the first row so rows keep their spacing. */
  private restampOffset: number | undefined;
  private readonly futureToleranceMs: number;
  private readonly headerNames: readonly string[];
  private readonly series = new Map<string, Map<string, SeriesEntry>>();
  private seriesCount = 0;
  /** Entry of the previous valid row, whose `next` predicts the current row's series. */
  private previous: SeriesEntry | null = null;
  private readonly strings = new Map<string, string>();
  /** Column indexes of timestamp and value, in row order (they bound the identity segments). */
  private readonly firstVariable: number;
  private readonly secondVariable: number;
  private seg0 = '';
  private seg1 = '';
  private seg2 = '';
  private lastTsText = '';
  private lastTsMs = NaN;
  /** Why the last {@link seriesOf} call returned null. */
  private problemReason: DeadLetterReason = 'bad_labels';
  private problemDetail = '';

  /**
   * @param columns column positions, from {@link checkHeader} or {@link defaultColumns}
   * @param width number of fields every row must have
   * @param headerNames the header's fields, to recognise a repeated header line (skipped)
   */
  constructor(
    columns: ColumnIndex,
    width: number,
    options: RowValidatorOptions,
    headerNames?: readonly string[],
  ) {
    this.columns = columns;
    this.width = width;
    this.source = options.source;
    this.clusterId = options.clusterId;
    this.restamp = options.timestamps === 'now';
    this.futureToleranceMs = options.futureToleranceMs ?? DEFAULT_FUTURE_TOLERANCE_MS;
    this.headerNames = headerNames ?? [];
    this.firstVariable = Math.min(columns.timestamp, columns.value);
    this.secondVariable = Math.max(columns.timestamp, columns.value);
  }

  /** A dead letter for `record` with the given reason. */
  deadLetter(line: number, raw: string, reason: string, detail: string): RowResult {
    return {
      ok: false,
      deadLetter: {
        source: this.source,
        line,
        raw: raw.length > MAX_DEAD_LETTER_RAW ? raw.slice(0, MAX_DEAD_LETTER_RAW) : raw,
        reason,
        detail,
      },
    };
  }

  /**
   * Validate one record. Records split with `unescape: false` are accepted: flagged fields are
   * unescaped here (the labels only when their series is not cached).
   * @param nowMs processing time: the future-timestamp reference and the `now` restamp value
   * @returns the row result, or null for a repeated header line (to be skipped silently)
   */
  validate(record: CsvRecord, nowMs: number): RowResult | null {
    if (!record.ok) return this.deadLetter(record.line, record.raw, record.reason, record.detail);
    let f = record.fields;
    const c = this.columns;
    if (f.length !== this.width) {
      return this.deadLetter(
        record.line,
        record.raw,
        'column_count',
        `expected ${this.width} fields, found ${f.length}`,
      );
    }
    let labelsEscaped = false;
    let escaped = record.escaped;
    if (escaped !== 0) {
      // labels_raw stays in its written form (the series cache compares it as written).
      if (c.labels_raw !== -1 && c.labels_raw < MAX_DEFERRED_FIELDS) {
        labelsEscaped = (escaped & (1 << c.labels_raw)) !== 0;
        escaped &= ~(1 << c.labels_raw);
      }
      if (escaped !== 0) {
        f = f.slice();
        for (let k = 0; k < f.length && k < MAX_DEFERRED_FIELDS; k++) {
          if ((escaped & (1 << k)) !== 0) f[k] = unescapeField(f[k]!);
        }
      }
    }
    const tsText = f[c.timestamp]!;
    const metric = f[c.metric_name]!;
    const gpuId = f[c.gpu_id]!;
    const uuid = f[c.uuid]!;
    const hostname = f[c.Hostname]!;
    const valueText = f[c.value]!;
    if (
      tsText === '' ||
      metric === '' ||
      gpuId === '' ||
      uuid === '' ||
      hostname === '' ||
      valueText === ''
    ) {
      const empty = (
        [
          ['timestamp', tsText],
          ['metric_name', metric],
          ['gpu_id', gpuId],
          ['uuid', uuid],
          ['Hostname', hostname],
          ['value', valueText],
        ] as const
      )
        .filter(([, v]) => v === '')
        .map(([k]) => k);
      return this.deadLetter(record.line, record.raw, 'missing_field', `empty ${empty.join(', ')}`);
    }
    if (!isIndex(gpuId)) {
      if (this.isHeaderRepeat(f)) return null;
      return this.deadLetter(
        record.line,
        record.raw,
        'bad_gpu_id',
        `gpu_id ${JSON.stringify(gpuId.slice(0, 64))} is not an integer index`,
      );
    }
    let ts: number;
    if (tsText === this.lastTsText) {
      ts = this.lastTsMs;
    } else {
      ts = parseRfc3339(tsText);
      this.lastTsText = tsText;
      this.lastTsMs = ts;
    }
    if (Number.isNaN(ts)) {
      if (this.isHeaderRepeat(f)) return null;
      return this.deadLetter(
        record.line,
        record.raw,
        'bad_timestamp',
        `timestamp ${JSON.stringify(tsText.slice(0, 64))} is not RFC 3339`,
      );
    }
    if (!this.restamp) {
      const problem = this.timeProblem(ts, nowMs, tsText, '');
      if (problem !== null) return this.deadLetter(record.line, record.raw, problem, this.problemDetail);
    }
    const value = parseValue(valueText);
    if (typeof value !== 'number') {
      if (this.isHeaderRepeat(f)) return null;
      return this.deadLetter(
        record.line,
        record.raw,
        value,
        `value ${JSON.stringify(valueText.slice(0, 64))} is ${value === 'non_finite_value' ? 'not finite' : 'not a number'}`,
      );
    }
    const e = this.seriesOf(record.raw, f, labelsEscaped);
    if (e === null) return this.deadLetter(record.line, record.raw, this.problemReason, this.problemDetail);
    let timestampMs = ts;
    if (this.restamp) {
      // The first valid row fixes the offset (it lands on now); later rows keep their spacing.
      const offset = this.restampOffset ?? nowMs - ts;
      timestampMs = ts + offset;
      const problem = this.timeProblem(
        timestampMs,
        nowMs,
        tsText,
        ` restamped by ${offset} ms (--timestamps now keeps rows' spacing from the first row)`,
      );
      if (problem !== null) return this.deadLetter(record.line, record.raw, problem, this.problemDetail);
      this.restampOffset = offset;
    }
    if (this.previous !== null) this.previous.next = e;
    this.previous = e;
    const sample: Sample = {
      clusterId: this.clusterId,
      hostname: e.hostname,
      gpuId: e.gpuId,
      uuid: e.uuid,
      device: e.device,
      modelName: e.modelName,
      metric: e.metric,
      container: e.container,
      pod: e.pod,
      namespace: e.namespace,
      labels: e.labels,
      timestampMs,
      value,
    };
    return { ok: true, sample, line: record.line };
  }

  /**
   * Reason a sample time cannot be stored: outside years 0001-9999, or beyond the future tolerance.
   * Sets {@link problemDetail}; null when the time is fine.
   * @param how what was done to the row's timestamp (for the detail), '' when nothing
   */
  private timeProblem(ms: number, nowMs: number, tsText: string, how: string): DeadLetterReason | null {
    const shown = JSON.stringify(tsText.slice(0, 64));
    if (!(ms >= MIN_TIMESTAMP_MS && ms <= MAX_TIMESTAMP_MS)) {
      const at = Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms).toISOString() : String(ms);
      this.problemDetail = `timestamp ${shown}${how} is ${at}, outside the years 0001-9999 the store can hold`;
      return 'timestamp_out_of_range';
    }
    if (ms > nowMs + this.futureToleranceMs) {
      this.problemDetail = `timestamp ${shown}${how} is ${Math.round((ms - nowMs) / 1000)} s ahead of now (tolerance ${Math.round(this.futureToleranceMs / 1000)} s)`;
      return 'future_timestamp';
    }
    return null;
  }

  /**
   * The cached series of a valid row, created on a miss; null when the row's identity cannot be
   * stored (an identity field over {@link MAX_IDENTITY_FIELD_BYTES}, malformed `labels_raw`), with
   * the reason in {@link problemReason} / {@link problemDetail}. Only a miss is checked: a cached
   * series passed the same checks with the same text.
   *
   * Fast path: when every field of the row was quoted (and none but labels_raw had escapes), the
   * row's text outside the timestamp and value fields is compared with the cached series' text in
   * at most three comparisons, instead of one comparison per identity field. Comparing strings
   * sliced from a large block leaves optimised code, so the number of comparisons is what counts.
   */
  private seriesOf(raw: string, f: string[], labelsEscaped: boolean): SeriesEntry | null {
    const c = this.columns;
    const hasSegments = this.segments(raw, f);
    const s0 = this.seg0;
    const s1 = this.seg1;
    const s2 = this.seg2;
    let e = this.previous?.next ?? undefined;
    if (hasSegments && e !== undefined && e.seg1 === s1 && e.seg2 === s2 && e.seg0 === s0) return e;
    const uuid = f[c.uuid]!;
    const metric = f[c.metric_name]!;
    e = this.series.get(uuid)?.get(metric);
    if (e !== undefined && hasSegments && e.seg1 === s1 && e.seg2 === s2 && e.seg0 === s0) return e;
    const hostname = f[c.Hostname]!;
    const gpuId = f[c.gpu_id]!;
    const device = c.device === -1 ? '' : f[c.device]!;
    const modelName = c.modelName === -1 ? '' : f[c.modelName]!;
    const container = c.container === -1 ? '' : f[c.container]!;
    const pod = c.pod === -1 ? '' : f[c.pod]!;
    const namespace = c.namespace === -1 ? '' : f[c.namespace]!;
    const labelsText = c.labels_raw === -1 ? '' : f[c.labels_raw]!;
    if (
      e !== undefined &&
      e.labelsText === labelsText &&
      e.hostname === hostname &&
      e.gpuId === gpuId &&
      e.device === device &&
      e.modelName === modelName &&
      e.container === container &&
      e.pod === pod &&
      e.namespace === namespace
    ) {
      return e;
    }
    let tooLong: DcgmColumn | null = null;
    for (const name of IDENTITY_COLUMNS) {
      const k = c[name];
      if (k !== -1 && overIdentityLimit(f[k]!)) {
        tooLong = name;
        break;
      }
    }
    if (tooLong !== null) {
      const bytes = Buffer.byteLength(f[c[tooLong]]!, 'utf8');
      this.problemReason = 'identity_field_too_long';
      this.problemDetail = `${tooLong} is ${bytes} bytes; identity fields may be at most ${MAX_IDENTITY_FIELD_BYTES} bytes (the store indexes them)`;
      return null;
    }
    let labels: Record<string, string> = {};
    if (labelsText !== '') {
      const parsed = parseLabels(labelsEscaped ? unescapeField(labelsText) : labelsText);
      if (!parsed.ok) {
        this.problemReason = 'bad_labels';
        this.problemDetail = `labels_raw: ${parsed.detail} (at character ${parsed.offset + 1})`;
        return null;
      }
      labels = parsed.labels;
    }
    if (this.seriesCount >= SERIES_CACHE_LIMIT) {
      this.series.clear();
      this.strings.clear();
      this.seriesCount = 0;
      this.previous = null;
    }
    for (const k of Object.keys(labels)) setOwn(labels, k, this.intern(labels[k]!));
    e = {
      hostname: this.intern(hostname),
      gpuId: this.intern(gpuId),
      uuid: this.intern(uuid),
      device: this.intern(device),
      modelName: this.intern(modelName),
      metric: this.intern(metric),
      container: this.intern(container),
      pod: this.intern(pod),
      namespace: this.intern(namespace),
      labelsText: detach(labelsText),
      labels: Object.freeze(labels),
      seg0: hasSegments ? detach(s0) : null,
      seg1: hasSegments ? detach(s1) : null,
      seg2: hasSegments ? detach(s2) : null,
      next: null,
    };
    let byMetric = this.series.get(e.uuid);
    if (byMetric === undefined) {
      byMetric = new Map();
      this.series.set(e.uuid, byMetric);
    }
    if (!byMetric.has(e.metric)) this.seriesCount++;
    byMetric.set(e.metric, e);
    return e;
  }

  /**
   * Cut `raw` into the text before, between and after the timestamp and value fields (into seg0,
   * seg1, seg2). Only possible when every field was quoted and kept its written length, which holds
   * exactly when raw.length = sum of field lengths + 3 * fields - 1.
   */
  private segments(raw: string, f: string[]): boolean {
    const n = f.length;
    const a = this.firstVariable;
    const b = this.secondVariable;
    let offset = 1;
    let startA = 0;
    let startB = 0;
    for (let k = 0; k < n; k++) {
      if (k === a) startA = offset;
      else if (k === b) startB = offset;
      offset += f[k]!.length + 3;
    }
    if (offset - 2 !== raw.length) return false;
    this.seg0 = raw.slice(0, startA);
    this.seg1 = raw.slice(startA + f[a]!.length, startB);
    this.seg2 = raw.slice(startB + f[b]!.length);
    return true;
  }

  private isHeaderRepeat(fields: readonly string[]): boolean {
    const h = this.headerNames;
    if (h.length !== fields.length || h.length === 0) return false;
    for (let k = 0; k < h.length; k++) if (h[k] !== fields[k]) return false;
    return true;
  }

  /** One shared copy per distinct string, detached from the input block it was sliced from. */
  private intern(s: string): string {
    if (s.length === 0) return '';
    const hit = this.strings.get(s);
    if (hit !== undefined) return hit;
    const copy = detach(s);
    this.strings.set(copy, copy);
    return copy;
  }
}

/** True when `s` is longer than {@link MAX_IDENTITY_FIELD_BYTES} in UTF-8 (at most 3 bytes per code unit). */
export function overIdentityLimit(s: string): boolean {
  return s.length > MAX_IDENTITY_FIELD_BYTES / 3 && Buffer.byteLength(s, 'utf8') > MAX_IDENTITY_FIELD_BYTES;
}

/** Replace the value of an own property (works for a `__proto__` label too). */
export function setOwn(o: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
}

/** A flat copy of `s` that does not reference the string it was sliced from. */
export function detach(s: string): string {
  return Buffer.from(s, 'utf8').toString('utf8');
}
