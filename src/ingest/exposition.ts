/**
 * Streaming parser of the Prometheus text exposition format 0.0.4 and OpenMetrics 1.0 text, as
 * NVIDIA dcgm-exporter serves it on `/metrics`. Each sample line of a DCGM field becomes the same
 * {@link RowResult} the CSV path produces (a {@link Sample}, or a {@link DeadLetter} with a named
 * reason), so the streamer and everything after it are unchanged.
 *
 * - `# HELP`, `# TYPE` (and OpenMetrics `# UNIT`) are kept per metric family ({@link MetricFamily});
 *   other comments and blank lines are ignored. OpenMetrics `# EOF` ends the input: a line after it
 *   is `bad_exposition_line`, input that ends without it is `missing_eof` (it may be cut short).
 * - `name{l="v",...} value [timestamp]`: label values unescape `\\`, `\"` and `\n` (any other escape is
 *   malformed). Values are decimal numbers or `NaN` / `+Inf` / `-Inf` (non-finite values become
 *   `non_finite_value` like CSV). Timestamps are integer milliseconds in 0.0.4 text and (float)
 *   seconds in OpenMetrics; a sample without one takes `scrapeStartMs`, as Prometheus does. An
 *   OpenMetrics exemplar (`# {...} v [ts]` after the value) is ignored.
 * - Series whose metric name does not start with `DCGM_` are skipped and counted ({@link
 *   ExpositionParser.skipped}), never dead-lettered; so are OpenMetrics `_created` series of counter,
 *   histogram, summary and gaugehistogram families (the creation time, not a sample).
 * - Labels map onto the sample as the CSV columns do (see {@link ExpositionParser}); every label goes
 *   into `labels`, with `__name__` set to the metric name as in the `labels_raw` Prometheus writes, so
 *   a sample read from exposition text equals the one read from the CSV export of the same data.
 *
 * The same limits as the CSV path apply: identity fields over {@link MAX_IDENTITY_FIELD_BYTES} bytes,
 * times outside years 0001-9999, lines over `maxLineBytes`, bad UTF-8 (per line). A bad line never
 * stops the input; results do not depend on where the chunks are cut.
 */
import { isUtf8 } from 'node:buffer';
import type { Sample, SeriesKey } from '../domain/types.js';
import {
  DEFAULT_FUTURE_TOLERANCE_MS,
  MAX_DEAD_LETTER_RAW,
  MAX_IDENTITY_FIELD_BYTES,
  MAX_TIMESTAMP_MS,
  MIN_TIMESTAMP_MS,
  detach,
  isIndex,
  overIdentityLimit,
  parseValue,
  setOwn,
  type RowResult,
} from './validate.js';

export type { RowResult } from './validate.js';

/**
 * Dead-letter reasons only the exposition path produces, with what they mean. It also uses these of
 * `DEAD_LETTER_REASONS`: `bad_utf8`, `missing_field` (no `gpu`, no `UUID`/`uuid`, or no `Hostname`/
 * `hostname` label and no default host), `bad_gpu_id`, `identity_field_too_long`, `non_numeric_value`,
 * `non_finite_value`, `timestamp_out_of_range`, `future_timestamp`, `unterminated_record`.
 */
export const EXPOSITION_DEAD_LETTER_REASONS = {
  bad_exposition_line:
    'a line of Prometheus/OpenMetrics exposition text is malformed (bad metric or label name, unclosed or badly escaped label value, repeated label, no value, bad timestamp, text after the timestamp, unknown # TYPE, a line after # EOF); the detail says what and where',
  oversized_line: 'an exposition line is longer than the configured maximum (maxLineBytes, default 64 KiB)',
  missing_eof: 'OpenMetrics input ended without "# EOF", so it may have been cut short',
} as const;

/** A reason code of {@link EXPOSITION_DEAD_LETTER_REASONS}. */
export type ExpositionDeadLetterReason = keyof typeof EXPOSITION_DEAD_LETTER_REASONS;

/** Which text format the input is: Prometheus text 0.0.4 (default) or OpenMetrics 1.0 text. */
export type ExpositionFormat = 'text' | 'openmetrics';

/** Metric types of `# TYPE` lines (0.0.4 text and OpenMetrics). */
export const METRIC_TYPES = [
  'counter',
  'gauge',
  'histogram',
  'summary',
  'untyped',
  'unknown',
  'gaugehistogram',
  'stateset',
  'info',
] as const;

/** One metric type. */
export type MetricType = (typeof METRIC_TYPES)[number];

/** What `# HELP`, `# TYPE` and `# UNIT` said about one metric family. */
export interface MetricFamily {
  name: string;
  type?: MetricType;
  help?: string;
  unit?: string;
}

/** Options of {@link readExposition} and {@link ExpositionParser}. */
export interface ExpositionOptions {
  /** Source name recorded on dead letters (target URL, file path, `stdin`). */
  source: string;
  /** Cluster the samples belong to (CLUSTER_ID). */
  clusterId: string;
  /** Start of the scrape (ms): the time of samples written without a timestamp. */
  scrapeStartMs: number;
  /** Host of samples without a `Hostname`/`hostname` label (the target's host); else `missing_field`. */
  defaultHostname?: string;
  /** Stops the input ({@link readExposition}): an incomplete last line is then dropped silently. */
  signal?: AbortSignal;
  /** `text` (0.0.4, default) or `openmetrics`. */
  format?: ExpositionFormat;
  /** Largest line in bytes (without its line feed) before it is `oversized_line`. Default 64 KiB. */
  maxLineBytes?: number;
  /** How far ahead of now a written timestamp may be before it is `future_timestamp`. Default one day. */
  futureToleranceMs?: number;
  /** Clock, for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * Labels added to every sample unless the line has a label of that name (Prometheus target labels
   * such as `instance` and `job`, with honor_labels semantics).
   */
  extraLabels?: Readonly<Record<string, string>>;
  /** Called once when {@link readExposition} ends (also when aborted), with the parser's counts. */
  onEnd?: (summary: ExpositionSummary) => void;
}

/** Counts of one parse. `lines` = samples + skipped + comments + blank + dead letters of lines. */
export interface ExpositionSummary {
  /** Physical lines seen (a last line without a line feed included). */
  lines: number;
  samples: number;
  /** Dead letters (a `missing_eof` one is not a line). */
  deadLetters: number;
  /** Sample lines of non-DCGM series (and OpenMetrics `_created` series), dropped on purpose. */
  skipped: number;
  /** Well-formed comment lines (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`, other `#` lines). */
  comments: number;
  blank: number;
  /** Metric families by name, as `# HELP` / `# TYPE` / `# UNIT` described them. */
  families: ReadonlyMap<string, MetricFamily>;
}

/** Default of {@link ExpositionOptions.maxLineBytes}. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 1024;

/** Bytes of a line kept to show on its dead letter (enough for {@link MAX_DEAD_LETTER_RAW} characters). */
const RAW_PREFIX_BYTES = MAX_DEAD_LETTER_RAW * 4;

/** Largest number of series kept in the cache before it is cleared. */
const SERIES_CACHE_LIMIT = 100_000;

/** Families whose `_created` series carry a creation time, not a sample (OpenMetrics). */
const CREATED_TYPES = new Set<MetricType | undefined>(['counter', 'histogram', 'summary', 'gaugehistogram']);

/** Suffixes OpenMetrics appends to a family name in its sample names. */
const FAMILY_SUFFIXES = ['_total', '_created', '_bucket', '_count', '_sum', '_gcount', '_gsum', '_info'];

const enum Kind {
  Sample,
  Skip,
  Dead,
}

/** One series as written (`name{labels}`), resolved once. */
interface Entry extends Omit<SeriesKey, 'labels'> {
  /** The series text as written, from the metric name to the closing brace. */
  text: string;
  kind: Kind;
  reason: string;
  detail: string;
  labels: Readonly<Record<string, string>>;
  /** The series that followed this one last time (expositions list series in a stable order). */
  next: Entry | null;
}

function isNameStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58;
}

function isNameChar(c: number): boolean {
  return isNameStart(c) || (c >= 48 && c <= 57);
}

function isLabelStart(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95;
}

function isLabelChar(c: number): boolean {
  return isLabelStart(c) || (c >= 48 && c <= 57);
}

/**
 * `[-]digits[.digits]` with at most 15 digits, exactly as `Number()` reads it (an integer below 2^53
 * divided by an exact power of ten is correctly rounded); NaN for anything else.
 */
function fastDecimal(s: string, a: number, b: number): number {
  let i = a;
  let neg = false;
  if (i < b && s.charCodeAt(i) === 45) {
    neg = true;
    i++;
  }
  let m = 0;
  let digits = 0;
  let point = -1;
  for (; i < b; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      m = m * 10 + (c - 48);
      digits++;
    } else if (c === 46 && point === -1) {
      point = i;
    } else {
      return NaN;
    }
  }
  if (digits === 0 || digits > 15) return NaN;
  const v = point === -1 ? m : m / POW10[b - point - 1]!;
  return neg ? -v : v;
}

const POW10 = Array.from({ length: 16 }, (_, k) => 10 ** k);

const DECIMAL = /^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$/;
const INTEGER = /^[-+]?[0-9]+$/;

function own(o: Record<string, string>, key: string): string | undefined {
  return Object.prototype.hasOwnProperty.call(o, key) ? o[key] : undefined;
}

/** Unescape `# HELP` text: `\\` and `\n` (and `\"` in OpenMetrics); other escapes kept as written. */
function unescapeHelp(s: string): string {
  if (!s.includes('\\')) return s;
  return s.replace(/\\(.)/g, (all, c: string) => (c === 'n' ? '\n' : c === '\\' || c === '"' ? c : all));
}

/**
 * Synchronous push parser behind {@link readExposition}: feed chunks, get row results.
 *
 * Label mapping (dcgm-exporter labels -> {@link Sample}): metric name -> `metric`; `gpu` -> `gpuId`;
 * `UUID` (or `uuid`) -> `uuid`; `device`; `modelName`; `Hostname` (or `hostname`, else
 * `defaultHostname`) -> `hostname`; `container`, `pod`, `namespace` (or the old `container_name`,
 * `pod_name`, `pod_namespace`). Every label, plus `__name__` and the `extraLabels`, goes into `labels`.
 */
export class ExpositionParser {
  /** Lines seen so far. */
  lines = 0;
  samples = 0;
  deadLetters = 0;
  /** Sample lines of non-DCGM series (and OpenMetrics `_created` series) dropped on purpose. */
  skipped = 0;
  comments = 0;
  blank = 0;

  private readonly source: string;
  private readonly clusterId: string;
  private readonly scrapeStartMs: number;
  private readonly defaultHostname: string | undefined;
  private readonly openMetrics: boolean;
  private readonly maxLineBytes: number;
  private readonly futureToleranceMs: number;
  private readonly now: () => number;
  private readonly extraLabels: readonly (readonly [string, string])[];
  private readonly familyMap = new Map<string, MetricFamily>();
  private readonly series = new Map<string, Entry>();
  private previous: Entry | null = null;
  /** Bytes of an incomplete last line. */
  private carry: Buffer | null = null;
  /** A line over the limit is being skipped up to its line feed; its first bytes are kept. */
  private discarding = false;
  private discardPrefix: Buffer[] = [];
  private discardPrefixBytes = 0;
  private discardBytes = 0;
  private eofSeen = false;
  private nowMs = 0;
  /** Output of the last {@link scanSeries}: the metric name and label pairs, or what is wrong. */
  private scanName = '';
  private scanLabels: string[] = [];
  private scanProblem = '';

  constructor(options: ExpositionOptions) {
    this.source = options.source;
    this.clusterId = options.clusterId;
    this.scrapeStartMs = options.scrapeStartMs;
    this.defaultHostname = options.defaultHostname === '' ? undefined : options.defaultHostname;
    this.openMetrics = options.format === 'openmetrics';
    this.maxLineBytes = options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    this.futureToleranceMs = options.futureToleranceMs ?? DEFAULT_FUTURE_TOLERANCE_MS;
    this.now = options.now ?? Date.now;
    this.extraLabels = Object.entries(options.extraLabels ?? {});
  }

  /** Metric families by name, as `# HELP` / `# TYPE` / `# UNIT` described them. */
  get families(): ReadonlyMap<string, MetricFamily> {
    return this.familyMap;
  }

  /** The type of the family a sample name belongs to (`foo_total` -> family `foo` in OpenMetrics). */
  typeOf(metric: string): MetricType | undefined {
    const exact = this.familyMap.get(metric)?.type;
    if (exact !== undefined) return exact;
    for (const suffix of FAMILY_SUFFIXES) {
      if (metric.endsWith(suffix)) {
        const t = this.familyMap.get(metric.slice(0, -suffix.length))?.type;
        if (t !== undefined) return t;
      }
    }
    return undefined;
  }

  /** The counts so far. */
  summary(): ExpositionSummary {
    return {
      lines: this.lines,
      samples: this.samples,
      deadLetters: this.deadLetters,
      skipped: this.skipped,
      comments: this.comments,
      blank: this.blank,
      families: this.familyMap,
    };
  }

  /** Parse one chunk; returns the rows of the lines it completes. */
  push(chunk: Buffer | Uint8Array | string): RowResult[] {
    const buf =
      typeof chunk === 'string'
        ? Buffer.from(chunk, 'utf8')
        : Buffer.isBuffer(chunk)
          ? chunk
          : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    const out: RowResult[] = [];
    this.nowMs = this.now();
    let start = 0;
    if (this.discarding) {
      const nl = buf.indexOf(10);
      if (nl === -1) {
        this.keepDiscarded(buf);
        return out;
      }
      this.keepDiscarded(buf.subarray(0, nl));
      this.endDiscard(out);
      start = nl + 1;
    }
    const first = buf.indexOf(10, start);
    if (first === -1) {
      this.addCarry(buf.subarray(start));
      return out;
    }
    if (this.carry !== null) {
      // The carried line ends in this chunk: parse it on its own, then the rest without a copy.
      const line = Buffer.concat([this.carry, buf.subarray(start, first + 1)]);
      this.carry = null;
      this.block(line, out, false);
      start = first + 1;
    }
    const last = buf.lastIndexOf(10);
    if (last >= start) this.block(buf.subarray(start, last + 1), out, false);
    if (last + 1 < buf.length) this.addCarry(buf.subarray(Math.max(last + 1, start)));
    return out;
  }

  /** Finish the input at its true end. */
  end(): RowResult[] {
    const out: RowResult[] = [];
    this.nowMs = this.now();
    if (this.discarding) {
      this.endDiscard(out);
    } else if (this.carry !== null) {
      const line = Buffer.concat([this.carry, Buffer.from('\n')]);
      this.carry = null;
      this.block(line, out, true);
    }
    if (this.openMetrics && !this.eofSeen) {
      out.push(
        this.dead(
          this.lines + 1,
          '',
          'missing_eof',
          'OpenMetrics input ended without "# EOF"; it may be cut short',
        ),
      );
    }
    return out;
  }

  /** The input was stopped early: drop the incomplete last line, if any. */
  abort(): void {
    this.carry = null;
    this.discarding = false;
    this.discardPrefix = [];
  }

  private addCarry(bytes: Buffer): void {
    if (bytes.length === 0) return;
    const total = (this.carry?.length ?? 0) + bytes.length;
    if (total > this.maxLineBytes) {
      this.discarding = true;
      this.discardPrefix = [];
      this.discardPrefixBytes = 0;
      this.discardBytes = 0;
      if (this.carry !== null) this.keepDiscarded(this.carry);
      this.keepDiscarded(bytes);
      this.carry = null;
      return;
    }
    // A copy, so the carry does not pin the whole chunk.
    this.carry = this.carry === null ? Buffer.from(bytes) : Buffer.concat([this.carry, bytes]);
  }

  private keepDiscarded(bytes: Buffer): void {
    this.discardBytes += bytes.length;
    if (this.discardPrefixBytes < RAW_PREFIX_BYTES) {
      const part = bytes.subarray(0, RAW_PREFIX_BYTES - this.discardPrefixBytes);
      this.discardPrefix.push(Buffer.from(part));
      this.discardPrefixBytes += part.length;
    }
  }

  private endDiscard(out: RowResult[]): void {
    const line = ++this.lines;
    const raw = Buffer.concat(this.discardPrefix).toString('utf8');
    out.push(this.oversized(line, raw, this.discardBytes));
    this.discarding = false;
    this.discardPrefix = [];
  }

  private oversized(line: number, raw: string, bytes: number): RowResult {
    return this.dead(
      line,
      raw,
      'oversized_line',
      `line is ${bytes} bytes, more than the maximum of ${this.maxLineBytes} (maxLineBytes)`,
    );
  }

  /** Parse whole lines: `buf` ends with a line feed. */
  private block(buf: Buffer, out: RowResult[], unterminated: boolean): void {
    const text = buf.toString('utf8');
    const valid = isUtf8(buf);
    // Byte and character offsets agree only for ASCII (valid UTF-8 of the same length).
    const ascii = valid && text.length === buf.length;
    const max = this.maxLineBytes;
    let pos = 0;
    let bpos = 0;
    const n = text.length;
    while (pos < n) {
      const nl = text.indexOf('\n', pos);
      const bnl = ascii ? nl : buf.indexOf(10, bpos);
      const line = ++this.lines;
      if (bnl - bpos > max) {
        const raw = buf.toString('utf8', bpos, Math.min(bnl, bpos + RAW_PREFIX_BYTES));
        out.push(this.oversized(line, raw, bnl - bpos));
      } else if (!valid && !isUtf8(buf.subarray(bpos, bnl))) {
        out.push(
          this.dead(
            line,
            text.slice(pos, nl),
            'bad_utf8',
            'the line contains bytes that are not valid UTF-8',
          ),
        );
      } else {
        let end = nl;
        if (end > pos && text.charCodeAt(end - 1) === 13) end--;
        this.line(text, pos, end, line, out, unterminated);
      }
      pos = nl + 1;
      bpos = bnl + 1;
    }
  }

  private dead(line: number, raw: string, reason: string, detail: string): RowResult {
    this.deadLetters++;
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

  private bad(text: string, s: number, e: number, line: number, detail: string): RowResult {
    return this.dead(line, text.slice(s, e), 'bad_exposition_line', `line ${line}: ${detail}`);
  }

  /** One line, `text[s, e)` without its line end. */
  private line(
    text: string,
    s: number,
    e: number,
    line: number,
    out: RowResult[],
    unterminated: boolean,
  ): void {
    let i = s;
    let c = text.charCodeAt(i);
    while (i < e && (c === 32 || c === 9)) c = text.charCodeAt(++i);
    if (i >= e) {
      this.blank++;
      return;
    }
    if (c === 35 /* # */) {
      const r = this.comment(text, i, e, line);
      if (r !== null) out.push(r);
      return;
    }
    if (this.eofSeen) {
      out.push(this.bad(text, s, e, line, 'text after "# EOF"'));
      return;
    }
    if (unterminated) {
      out.push(
        this.dead(
          line,
          text.slice(s, e),
          'unterminated_record',
          'the input ended inside this line (no line feed after it), so it may be cut short',
        ),
      );
      return;
    }
    // Predicted series: the one that followed the previous line's series last time.
    let entry: Entry | null = null;
    let k = i;
    const predicted = this.previous?.next ?? null;
    // slice + === compares natively; startsWith(text, position) with a long needle walks it in a
    // slow generic path, which was most of the parser's time (bench/parser.ts: 2x with this).
    if (predicted !== null && text.slice(i, i + predicted.text.length) === predicted.text) {
      k = i + predicted.text.length;
      const after = text.charCodeAt(k);
      if ((after === 32 || after === 9) && text.charCodeAt(k + 1) !== 123 /* { */) entry = predicted;
    }
    if (entry === null) {
      k = this.scanSeries(text, i, e);
      if (k < 0) {
        out.push(this.bad(text, s, e, line, this.scanProblem));
        return;
      }
      const after = text.charCodeAt(k);
      if (k >= e || (after !== 32 && after !== 9)) {
        out.push(
          this.bad(
            text,
            s,
            e,
            line,
            k >= e
              ? 'no value after the series'
              : `expected a space before the value at character ${k - s + 1}`,
          ),
        );
        return;
      }
      const key = text.slice(i, k);
      entry = this.series.get(key) ?? this.entry(key);
      if (this.previous !== null) this.previous.next = entry;
    }
    this.previous = entry;
    if (entry.kind === Kind.Skip) {
      this.skipped++;
      return;
    }
    if (entry.kind === Kind.Dead) {
      out.push(this.dead(line, text.slice(s, e), entry.reason, entry.detail));
      return;
    }
    // Value.
    while (k < e && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
    const vs = k;
    while (k < e && text.charCodeAt(k) !== 32 && text.charCodeAt(k) !== 9) k++;
    if (k === vs) {
      out.push(this.bad(text, s, e, line, 'no value after the series'));
      return;
    }
    let value = fastDecimal(text, vs, k);
    if (Number.isNaN(value)) {
      const written = text.slice(vs, k);
      const parsed =
        DECIMAL.test(written) || /^[-+]?(nan|inf|infinity)$/i.test(written) ? parseValue(written) : null;
      if (typeof parsed !== 'number') {
        const reason = parsed ?? 'non_numeric_value';
        out.push(
          this.dead(
            line,
            text.slice(s, e),
            reason,
            `value ${JSON.stringify(written.slice(0, 64))} is ${reason === 'non_finite_value' ? 'not finite' : 'not a number'}`,
          ),
        );
        return;
      }
      value = parsed;
    }
    // Timestamp (optional), then an OpenMetrics exemplar (ignored) or nothing.
    while (k < e && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
    let timestampMs = this.scrapeStartMs;
    let written = false;
    if (k < e && !(this.openMetrics && text.charCodeAt(k) === 35)) {
      const ts = k;
      while (k < e && text.charCodeAt(k) !== 32 && text.charCodeAt(k) !== 9) k++;
      const t = this.timestamp(text, ts, k);
      if (Number.isNaN(t)) {
        out.push(
          this.bad(
            text,
            s,
            e,
            line,
            `timestamp ${JSON.stringify(text.slice(ts, Math.min(k, ts + 64)))} is not ${this.openMetrics ? 'a number of seconds' : 'an integer number of milliseconds'}`,
          ),
        );
        return;
      }
      timestampMs = t;
      written = true;
      while (k < e && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
      if (k < e && !(this.openMetrics && text.charCodeAt(k) === 35)) {
        out.push(this.bad(text, s, e, line, `unexpected text after the timestamp at character ${k - s + 1}`));
        return;
      }
    }
    if (!(timestampMs >= MIN_TIMESTAMP_MS && timestampMs <= MAX_TIMESTAMP_MS)) {
      const at = Math.abs(timestampMs) <= 8.64e15 ? new Date(timestampMs).toISOString() : String(timestampMs);
      out.push(
        this.dead(
          line,
          text.slice(s, e),
          'timestamp_out_of_range',
          `timestamp ${written ? 'written' : '(scrape start)'} is ${at}, outside the years 0001-9999 the store can hold`,
        ),
      );
      return;
    }
    if (written && timestampMs > this.nowMs + this.futureToleranceMs) {
      out.push(
        this.dead(
          line,
          text.slice(s, e),
          'future_timestamp',
          `timestamp is ${Math.round((timestampMs - this.nowMs) / 1000)} s ahead of now (tolerance ${Math.round(this.futureToleranceMs / 1000)} s)`,
        ),
      );
      return;
    }
    const sample: Sample = {
      clusterId: entry.clusterId,
      hostname: entry.hostname,
      gpuId: entry.gpuId,
      uuid: entry.uuid,
      device: entry.device,
      modelName: entry.modelName,
      metric: entry.metric,
      container: entry.container,
      pod: entry.pod,
      namespace: entry.namespace,
      labels: entry.labels,
      timestampMs,
      value,
    };
    this.samples++;
    out.push({ ok: true, sample, line });
  }

  /** Milliseconds of a written timestamp, NaN when malformed. */
  private timestamp(text: string, a: number, b: number): number {
    if (!this.openMetrics && b - a <= 15) {
      // Fast path: an integer of at most 15 characters is exact.
      let i = a;
      const neg = text.charCodeAt(i) === 45;
      if (neg) i++;
      let v = 0;
      for (; i < b; i++) {
        const c = text.charCodeAt(i);
        if (c < 48 || c > 57) break;
        v = v * 10 + (c - 48);
      }
      if (i === b && b > a + (neg ? 1 : 0)) return neg && v !== 0 ? -v : v;
    }
    const token = text.slice(a, b);
    if (this.openMetrics) {
      if (!DECIMAL.test(token)) return NaN;
      return Math.round(Number(token) * 1000);
    }
    if (!INTEGER.test(token)) return NaN;
    const v = Number(token);
    return v === 0 ? 0 : v;
  }

  /**
   * Scan `name{label="value",...}` from `i`; returns the index after it, or -1 with the problem in
   * {@link scanProblem}. Leaves the name and label pairs in {@link scanName} / {@link scanLabels}.
   */
  private scanSeries(text: string, i: number, e: number): number {
    const s = i;
    if (!isNameStart(text.charCodeAt(i))) {
      this.scanProblem = `expected a metric name, found ${JSON.stringify(text[i])}`;
      return -1;
    }
    i++;
    while (i < e && isNameChar(text.charCodeAt(i))) i++;
    this.scanName = text.slice(s, i);
    const labels: string[] = [];
    this.scanLabels = labels;
    if (text.charCodeAt(i) !== 123 /* { */) return i;
    i++;
    for (;;) {
      while (i < e && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      if (i >= e) {
        this.scanProblem = 'the label set is not closed by "}"';
        return -1;
      }
      if (text.charCodeAt(i) === 125 /* } */) return i + 1;
      const ns = i;
      if (!isLabelStart(text.charCodeAt(i))) {
        this.scanProblem = `expected a label name at character ${i - s + 1}, found ${JSON.stringify(text[i])}`;
        return -1;
      }
      i++;
      while (i < e && isLabelChar(text.charCodeAt(i))) i++;
      const name = text.slice(ns, i);
      while (i < e && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      if (text.charCodeAt(i) !== 61 /* = */ || i >= e) {
        this.scanProblem = `label ${JSON.stringify(name)} has no "="`;
        return -1;
      }
      i++;
      while (i < e && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      if (text.charCodeAt(i) !== 34 /* " */ || i >= e) {
        this.scanProblem = `the value of label ${JSON.stringify(name)} is not quoted`;
        return -1;
      }
      const open = i;
      i++;
      let close = text.indexOf('"', i);
      const slash = text.indexOf('\\', i);
      let value: string;
      if (close !== -1 && close < e && (slash === -1 || slash > close)) {
        value = text.slice(i, close);
        i = close + 1;
      } else {
        let v = '';
        close = -1;
        while (i < e) {
          const ch = text.charCodeAt(i);
          if (ch === 34) {
            close = i;
            break;
          }
          if (ch === 92 /* \ */) {
            const x = text.charCodeAt(i + 1);
            if (i + 1 >= e || (x !== 92 && x !== 34 && x !== 110)) {
              this.scanProblem = `invalid escape in the value of label ${JSON.stringify(name)} at character ${i - s + 1}`;
              return -1;
            }
            v += x === 110 ? '\n' : x === 92 ? '\\' : '"';
            i += 2;
            continue;
          }
          v += text[i];
          i++;
        }
        if (close === -1) {
          this.scanProblem = `the value of label ${JSON.stringify(name)} at character ${open - s + 1} is not closed`;
          return -1;
        }
        value = v;
        i = close + 1;
      }
      for (let k = 0; k < labels.length; k += 2) {
        if (labels[k] === name) {
          this.scanProblem = `label ${JSON.stringify(name)} appears twice`;
          return -1;
        }
      }
      labels.push(name, value);
      while (i < e && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9)) i++;
      const sep = text.charCodeAt(i);
      if (i < e && sep === 44 /* , */) {
        i++;
        continue;
      }
      if (i < e && sep === 125) return i + 1;
      this.scanProblem =
        i >= e
          ? 'the label set is not closed by "}"'
          : `expected "," or "}" after the value of label ${JSON.stringify(name)}, found ${JSON.stringify(text[i])}`;
      return -1;
    }
  }

  /** Resolve and cache the series last scanned, written as `key`. */
  private entry(key: string): Entry {
    const metric = this.scanName;
    const pairs = this.scanLabels;
    const e: Entry = {
      text: detach(key),
      kind: Kind.Sample,
      reason: '',
      detail: '',
      clusterId: this.clusterId,
      hostname: '',
      gpuId: '',
      uuid: '',
      device: '',
      modelName: '',
      metric: '',
      container: '',
      pod: '',
      namespace: '',
      labels: {},
      next: null,
    };
    if (this.series.size >= SERIES_CACHE_LIMIT) {
      this.series.clear();
      this.previous = null;
    }
    this.series.set(e.text, e);
    if (
      !metric.startsWith('DCGM_') ||
      (this.openMetrics &&
        metric.endsWith('_created') &&
        CREATED_TYPES.has(this.familyMap.get(metric.slice(0, -8))?.type))
    ) {
      e.kind = Kind.Skip;
      return e;
    }
    const labels: Record<string, string> = {};
    for (let k = 0; k < pairs.length; k += 2) setOwn(labels, detach(pairs[k]!), detach(pairs[k + 1]!));
    setOwn(labels, '__name__', detach(metric));
    for (const [name, value] of this.extraLabels)
      if (own(labels, name) === undefined) setOwn(labels, name, value);
    const gpuId = own(labels, 'gpu');
    const uuid = own(labels, 'UUID') ?? own(labels, 'uuid');
    const hostname = own(labels, 'Hostname') ?? own(labels, 'hostname') ?? this.defaultHostname;
    const missing: string[] = [];
    if (gpuId === undefined || gpuId === '') missing.push('gpu');
    if (uuid === undefined || uuid === '') missing.push('UUID');
    if (hostname === undefined || hostname === '') missing.push('Hostname (and no default host)');
    if (missing.length > 0) {
      e.kind = Kind.Dead;
      e.reason = 'missing_field';
      e.detail = `no ${missing.join(', ')} label`;
      return e;
    }
    if (!isIndex(gpuId!)) {
      e.kind = Kind.Dead;
      e.reason = 'bad_gpu_id';
      e.detail = `gpu ${JSON.stringify(gpuId!.slice(0, 64))} is not an integer index`;
      return e;
    }
    const fields: [string, string][] = [
      ['Hostname', hostname!],
      ['metric_name', labels.__name__!],
      ['gpu', gpuId!],
      ['UUID', uuid!],
      ['device', own(labels, 'device') ?? ''],
      ['modelName', own(labels, 'modelName') ?? ''],
      ['container', own(labels, 'container') ?? own(labels, 'container_name') ?? ''],
      ['pod', own(labels, 'pod') ?? own(labels, 'pod_name') ?? ''],
      ['namespace', own(labels, 'namespace') ?? own(labels, 'pod_namespace') ?? ''],
    ];
    for (const [name, value] of fields) {
      if (overIdentityLimit(value)) {
        e.kind = Kind.Dead;
        e.reason = 'identity_field_too_long';
        e.detail = `${name} is ${Buffer.byteLength(value, 'utf8')} bytes; identity fields may be at most ${MAX_IDENTITY_FIELD_BYTES} bytes (the store indexes them)`;
        return e;
      }
    }
    e.hostname = fields[0]![1];
    e.metric = fields[1]![1];
    e.gpuId = fields[2]![1];
    e.uuid = fields[3]![1];
    e.device = fields[4]![1];
    e.modelName = fields[5]![1];
    e.container = fields[6]![1];
    e.pod = fields[7]![1];
    e.namespace = fields[8]![1];
    e.labels = Object.freeze(labels);
    return e;
  }

  /** A `#` line: HELP / TYPE / UNIT / EOF recorded, other comments ignored; a dead letter if malformed. */
  private comment(text: string, i: number, e: number, line: number): RowResult | null {
    let k = i + 1;
    while (k < e && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
    const ws = k;
    while (k < e && text.charCodeAt(k) !== 32 && text.charCodeAt(k) !== 9) k++;
    const word = text.slice(ws, k);
    if (this.eofSeen) return this.bad(text, i, e, line, 'text after "# EOF"');
    if (word === 'EOF' && this.openMetrics && k === e) {
      this.eofSeen = true;
      this.comments++;
      return null;
    }
    if (word !== 'HELP' && word !== 'TYPE' && !(word === 'UNIT' && this.openMetrics)) {
      this.comments++;
      return null;
    }
    while (k < e && (text.charCodeAt(k) === 32 || text.charCodeAt(k) === 9)) k++;
    const ns = k;
    if (!isNameStart(text.charCodeAt(k)) || k >= e)
      return this.bad(text, i, e, line, `# ${word} names no metric`);
    while (k < e && isNameChar(text.charCodeAt(k))) k++;
    const name = text.slice(ns, k);
    if (k < e && text.charCodeAt(k) !== 32 && text.charCodeAt(k) !== 9) {
      return this.bad(text, i, e, line, `# ${word}: invalid metric name at character ${k - i + 1}`);
    }
    if (k < e) k++;
    const rest = text.slice(k, e);
    let family = this.familyMap.get(name);
    if (word === 'TYPE') {
      const type = rest.trim();
      if (!(METRIC_TYPES as readonly string[]).includes(type)) {
        return this.bad(
          text,
          i,
          e,
          line,
          `# TYPE ${name}: unknown type ${JSON.stringify(type.slice(0, 64))}`,
        );
      }
      if (family === undefined) {
        family = { name: detach(name) };
        this.familyMap.set(family.name, family);
      }
      family.type = type as MetricType;
    } else {
      if (family === undefined) {
        family = { name: detach(name) };
        this.familyMap.set(family.name, family);
      }
      if (word === 'HELP') family.help = detach(unescapeHelp(rest));
      else family.unit = detach(rest.trim());
    }
    this.comments++;
    return null;
  }
}

/**
 * Read Prometheus / OpenMetrics exposition text into row results.
 *
 * Yields one array per input chunk that completes lines with results, and a last one for what the
 * end of input completes. Never throws on bad lines: they come back as dead letters. When the stream
 * ends and `options.signal` has aborted, an incomplete last line is dropped (no `missing_eof`
 * either); otherwise a last sample line without a line feed is `unterminated_record`.
 * @throws whatever the chunk stream throws (unchanged)
 */
export async function* readExposition(
  chunks: AsyncIterable<Buffer | Uint8Array | string>,
  options: ExpositionOptions,
): AsyncGenerator<RowResult[]> {
  const parser = new ExpositionParser(options);
  try {
    for await (const chunk of chunks) {
      const rows = parser.push(chunk);
      if (rows.length > 0) yield rows;
    }
    if (options.signal?.aborted === true) {
      parser.abort();
      return;
    }
    const rest = parser.end();
    if (rest.length > 0) yield rest;
  } finally {
    options.onEnd?.(parser.summary());
  }
}

/**
 * True when the first bytes of an input look like exposition text rather than DCGM CSV: the first
 * non-blank line is a `#` comment (`# HELP`, `# TYPE`, ...) or starts like a sample line
 * (`metric_name{label="...` or `metric_name value`). A CSV header (`timestamp,metric_name,...`) or a
 * quoted CSV row is not.
 */
export function looksLikeExposition(firstBytes: Buffer): boolean {
  let text = firstBytes.toString('utf8', 0, Math.min(firstBytes.length, 8192));
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const line = text.split('\n').find((l) => l.trim() !== '');
  if (line === undefined) return false;
  const t = line.trimStart();
  if (t.startsWith('#')) return true;
  return /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{\s*([a-zA-Z_]|\}|$)|[ \t]+[-+.0-9NnIi])/.test(t);
}
