/**
 * Streaming RFC 4180 record splitter over Buffer (or string) chunks.
 *
 * Two layers: a byte layer that cuts the input after line terminators and decodes whole lines after a
 * strict UTF-8 check (`isUtf8`, falling back to line-by-line decoding to pin bad bytes to their lines),
 * and a text layer that splits records with `indexOf` (quotes, doubled quotes, commas and line breaks
 * inside quotes). Outside quotes LF, CRLF and a lone CR (old Mac line endings) each end a line, so
 * rows are never merged. Faults never stop the stream: an unterminated quote, an oversized field or
 * record, or bad UTF-8 becomes an error record with a reason, and the splitter resynchronises at the
 * start of the line after the one where the broken record began. A last record that the input ends
 * inside (no line terminator after it) is an `unterminated_record` error, not a record: it may have
 * been cut short. {@link CsvRecordSplitter.abort} instead drops such a tail silently (the input was
 * stopped, not ended).
 */
import { isUtf8 } from 'node:buffer';

const QUOTE = 34; // "
const COMMA = 44; // ,
const LF = 10; // \n
const CR = 13; // \r

/** Why a record could not be split into fields. */
export type CsvErrorReason =
  | 'unterminated_quote'
  | 'malformed_quote'
  | 'oversized_field'
  | 'oversized_record'
  | 'bad_utf8'
  | 'unterminated_record';

/** A record split into fields. */
export interface CsvRecordOk {
  ok: true;
  /** Unquoted field values. */
  fields: string[];
  /** 1-based physical line number where the record starts. */
  line: number;
  /** The record's text without its line terminator. */
  raw: string;
  /**
   * Only with `unescape: false`: bit k is set when field k (k < 30) still holds doubled quotes
   * (`""`) and must go through {@link unescapeField}. Always 0 otherwise.
   */
  escaped: number;
}

/** A record that could not be split; the splitter resumed at the next line start. */
export interface CsvRecordError {
  ok: false;
  /** 1-based physical line number where the record starts. */
  line: number;
  /**
   * The record's first physical line (or as much of it as was read; for `unterminated_record` the
   * whole record), bad bytes shown as U+FFFD, at most 1,000 characters.
   */
  raw: string;
  reason: CsvErrorReason;
  /** Human detail for the reason. */
  detail: string;
}

/** One record of the input: either its fields or the reason it was refused. */
export type CsvRecord = CsvRecordOk | CsvRecordError;

/** Bounds and behaviour of {@link CsvRecordSplitter}. */
export interface CsvSplitterOptions {
  /** Largest record (all its lines) in bytes before it is refused. Default 64 KiB. */
  maxRecordBytes?: number;
  /** Largest single field in bytes before the record is refused as `oversized_field`. Default 4 KiB. */
  maxFieldBytes?: number;
  /** Skip lines that are completely empty (they yield no record). Default true. */
  skipEmptyLines?: boolean;
  /**
   * Turn doubled quotes inside quoted fields into single quotes. Default true. With false, the
   * first 30 fields are returned as written and flagged in {@link CsvRecordOk.escaped}, so a
   * consumer that caches by field text (e.g. DCGM `labels_raw`) can skip the copy.
   */
  unescape?: boolean;
}

/** Highest field index (exclusive) whose unescaping can be deferred with `unescape: false`. */
export const MAX_DEFERRED_FIELDS = 30;

/** Replace the doubled quotes of a quoted field's content with single quotes. */
export function unescapeField(field: string): string {
  return field.replaceAll('""', '"');
}

/** Default for {@link CsvSplitterOptions.maxRecordBytes}. */
export const DEFAULT_MAX_RECORD_BYTES = 64 * 1024;
/** Default for {@link CsvSplitterOptions.maxFieldBytes}. */
export const DEFAULT_MAX_FIELD_BYTES = 4 * 1024;

/** Bytes decoded to one string at a time (see push()). */
const DECODE_WINDOW = 64 * 1024;

/** Longest `raw` text kept on an error record (characters). */
const MAX_ERROR_RAW = 1000;

/** Half-open range [start, end) of decoded text that came from a line with invalid UTF-8. */
interface BadRange {
  start: number;
  end: number;
}

/** UTF-8 length of `s` without allocating (only called on rare, already-long fields). */
function utf8Length(s: string): number {
  return Buffer.byteLength(s, 'utf8');
}

/**
 * Splits a stream of CSV bytes into records. Feed chunks with {@link push}, then call {@link end}
 * once; each call returns the records completed by that input, in order.
 *
 * Memory is bounded: at most one partial record (<= maxRecordBytes) is held between calls; a line
 * longer than that is reported and its remainder discarded up to the next line terminator.
 */
export class CsvRecordSplitter {
  private readonly maxRecordBytes: number;
  private readonly maxFieldBytes: number;
  private readonly skipEmptyLines: boolean;
  private readonly unescape: boolean;

  /** Undecoded bytes after the last line terminator seen. */
  private pending: Buffer[] = [];
  private pendingLength = 0;
  /** Decoded text of a record that is not complete yet (starts at a record start). */
  private carry = '';
  private carryBad: BadRange[] = [];
  /** Physical line number of the first character of `carry` (or of the next text). */
  private line = 1;
  /** True while discarding the rest of an over-long line. */
  private skipping = false;
  /**
   * The text so far ended with a CR that terminated a line: a LF at the start of the next text is
   * the second half of that CRLF, not an empty line.
   */
  private afterCr = false;
  private started = false;
  private ended = false;

  constructor(options: CsvSplitterOptions = {}) {
    this.maxRecordBytes = options.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
    this.maxFieldBytes = options.maxFieldBytes ?? DEFAULT_MAX_FIELD_BYTES;
    this.skipEmptyLines = options.skipEmptyLines ?? true;
    this.unescape = options.unescape ?? true;
    if (!(this.maxFieldBytes > 0) || !(this.maxRecordBytes >= this.maxFieldBytes)) {
      throw new RangeError('CsvRecordSplitter: need 0 < maxFieldBytes <= maxRecordBytes');
    }
  }

  /** Feed one chunk; returns the records it completed. A string chunk is taken as UTF-8 text. */
  push(chunk: Buffer | string): CsvRecord[] {
    if (this.ended) throw new Error('CsvRecordSplitter: push() after end()');
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
    const out: CsvRecord[] = [];
    if (bytes.length === 0) return out;
    const lastTerm = lastTerminator(bytes);
    if (lastTerm === -1) {
      // Copy: the caller may reuse its buffer.
      this.pending.push(Buffer.from(bytes));
      this.pendingLength += bytes.length;
      if (this.pendingLength > this.maxRecordBytes) this.flushPartialLine(out);
      return out;
    }
    let from = 0;
    if (this.pendingLength > 0) {
      // Finish the pending partial line on its own, so the bulk of the chunk is never copied.
      const firstTerm = firstTerminator(bytes, 0);
      this.pending.push(bytes.subarray(0, firstTerm + 1));
      const head = Buffer.concat(this.pending);
      this.pending = [];
      this.pendingLength = 0;
      this.decodeAndSplit(head, false, out);
      from = firstTerm + 1;
    }
    const block = bytes.subarray(from, lastTerm + 1);
    if (lastTerm + 1 < bytes.length) {
      const rest = Buffer.from(bytes.subarray(lastTerm + 1));
      this.pending.push(rest);
      this.pendingLength = rest.length;
    }
    // Decode in windows of about 64 KiB: larger strings go to V8's large-object space, which is
    // measurably slower to allocate and to scan than young-generation strings.
    let start = 0;
    while (start < block.length) {
      let stop = block.length;
      if (stop - start > DECODE_WINDOW) {
        const t = lastTerminator(block.subarray(start, start + DECODE_WINDOW));
        // The block ends with a terminator, so a later one always exists.
        stop = t !== -1 ? start + t + 1 : firstTerminator(block, start + DECODE_WINDOW) + 1;
      }
      this.decodeAndSplit(block.subarray(start, stop), false, out);
      start = stop;
    }
    if (this.pendingLength > this.maxRecordBytes) this.flushPartialLine(out);
    return out;
  }

  /**
   * Signal the end of input; returns the records completed by it. A last record without a line
   * terminator comes back as an `unterminated_record` error: the input ended in the middle of it.
   */
  end(): CsvRecord[] {
    if (this.ended) return [];
    this.ended = true;
    const out: CsvRecord[] = [];
    const block = this.pendingLength > 0 ? Buffer.concat(this.pending) : Buffer.alloc(0);
    this.pending = [];
    this.pendingLength = 0;
    this.decodeAndSplit(block, true, out);
    return out;
  }

  /**
   * Signal that the input stopped early (aborted, not at its true end): the incomplete trailing
   * record, if any, is dropped without a record or an error. Every record before it was already
   * returned by {@link push}. Further pushes are refused, as after {@link end}.
   */
  abort(): void {
    this.ended = true;
    this.pending = [];
    this.pendingLength = 0;
    this.carry = '';
    this.carryBad = [];
    this.skipping = false;
    this.afterCr = false;
  }

  /** Physical line number where the next record will start (after the records returned so far). */
  get nextLine(): number {
    return this.line;
  }

  /** Decode a partial line that grew past maxRecordBytes, up to a UTF-8 character boundary. */
  private flushPartialLine(out: CsvRecord[]): void {
    const buf = Buffer.concat(this.pending);
    let cut = buf.length;
    // Back off over continuation bytes (10xxxxxx) and the lead byte of an incomplete sequence.
    let k = cut - 1;
    while (k >= 0 && cut - k <= 4 && (buf[k]! & 0xc0) === 0x80) k--;
    if (k >= 0 && buf[k]! >= 0xc0) {
      const lead = buf[k]!;
      const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
      if (cut - k < need) cut = k;
    }
    const rest = buf.subarray(cut);
    this.pending = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.pendingLength = rest.length;
    this.decodeAndSplit(buf.subarray(0, cut), false, out);
  }

  private decodeAndSplit(block: Buffer, final: boolean, out: CsvRecord[]): void {
    let text: string;
    let bad: BadRange[] | null = null;
    // isUtf8 (simdutf) + toString is as strict as a fatal TextDecoder, and the strings it makes
    // slice and compare several times faster than TextDecoder output.
    if (isUtf8(block)) {
      text = block.toString('utf8');
    } else {
      ({ text, bad } = decodeByLine(block));
    }
    if (!this.started && text.length > 0) {
      this.started = true;
      if (text.charCodeAt(0) === 0xfeff) {
        text = text.slice(1);
        if (bad !== null) bad = shift(bad, -1);
      }
    }
    this.split(text, bad, final, out);
  }

  /**
   * Index just after the line terminator at `t` (LF, CR or CRLF). A CR that ends a non-final text
   * sets {@link afterCr}, so a LF starting the next text completes the CRLF.
   */
  private terminatorEnd(text: string, t: number, final: boolean): number {
    if (text.charCodeAt(t) === LF) return t + 1;
    if (t + 1 < text.length) return text.charCodeAt(t + 1) === LF ? t + 2 : t + 1;
    if (!final) this.afterCr = true;
    return t + 1;
  }

  /** The text layer: split `text` (which follows `carry`) into records. */
  private split(input: string, inputBad: BadRange[] | null, final: boolean, out: CsvRecord[]): void {
    let text = input;
    let bad = inputBad;
    if (this.afterCr && text.length > 0) {
      this.afterCr = false;
      if (text.charCodeAt(0) === LF) {
        text = text.slice(1);
        if (bad !== null) bad = shift(bad, -1);
      }
    }
    if (this.skipping) {
      const t = nextTerminator(text, 0);
      if (t === -1) {
        if (final) this.skipping = false;
        return;
      }
      this.skipping = false;
      this.line++;
      const after = this.terminatorEnd(text, t, final);
      text = text.slice(after);
      if (bad !== null) bad = shift(bad, -after);
    }
    if (this.carry.length > 0) {
      const offset = this.carry.length;
      if (bad !== null || this.carryBad.length > 0) {
        bad = this.carryBad.concat(bad === null ? [] : shift(bad, offset));
      }
      text = this.carry + text;
      this.carry = '';
      this.carryBad = [];
    }
    if (bad !== null && bad.length === 0) bad = null;

    const n = text.length;
    const maxField = this.maxFieldBytes;
    const maxRecord = this.maxRecordBytes;
    let pos = 0;
    let line = this.line;
    // Next LF and next CR at or after the position last asked for; -1 when there is none left,
    // -2 when unknown. Valid for any later position up to themselves.
    let lf = -2;
    let cr = -2;

    record: while (pos < n) {
      if (lf !== -1 && lf < pos) lf = text.indexOf('\n', pos);
      if (cr !== -1 && cr < pos) cr = text.indexOf('\r', pos);
      // The record's first line terminator (outside or inside quotes).
      const firstTerm = lf === -1 ? cr : cr === -1 || lf < cr ? lf : cr;
      if (firstTerm === pos && this.skipEmptyLines) {
        pos = this.terminatorEnd(text, pos, final);
        line++;
        continue;
      }
      const fields: string[] = [];
      let i = pos;
      let termPos = -1; // index of the record terminator (n when the input ended without one)
      // Failure of this record: reason, detail; or 'incomplete' when more input is needed.
      let failReason: CsvErrorReason | null = null;
      let failDetail = '';
      let incomplete = false;
      let escapedMask = 0;

      for (;;) {
        if (lf !== -1 && lf < i) lf = text.indexOf('\n', i);
        if (cr !== -1 && cr < i) cr = text.indexOf('\r', i);
        // Next line terminator at or after i.
        const t = lf === -1 ? cr : cr === -1 || lf < cr ? lf : cr;
        if (text.charCodeAt(i) === QUOTE) {
          let j = i + 1;
          let escaped = false;
          let q: number;
          for (;;) {
            q = text.indexOf('"', j);
            if (q === -1 || (q + 1 === n && !final)) {
              q = -1;
              break;
            }
            if (text.charCodeAt(q + 1) === QUOTE) {
              escaped = true;
              j = q + 2;
              continue;
            }
            break;
          }
          if (q === -1) {
            // The quoted field runs past the text read so far.
            const spansLine = t !== -1;
            if (final) {
              failReason = 'unterminated_quote';
              failDetail = `quoted field ${fields.length + 1} is not closed before the end of input`;
            } else if (n - i - 1 > maxField && utf8Length(text.slice(i + 1)) > maxField) {
              failReason = spansLine ? 'unterminated_quote' : 'oversized_field';
              failDetail = spansLine
                ? `quoted field ${fields.length + 1} is not closed within ${maxField} bytes`
                : `field ${fields.length + 1} exceeds ${maxField} bytes`;
            } else if (n - pos > maxRecord) {
              failReason = spansLine ? 'unterminated_quote' : 'oversized_record';
              failDetail = `record exceeds ${maxRecord} bytes`;
            } else {
              incomplete = true;
            }
            break;
          }
          const len = q - i - 1;
          if (len > maxField) {
            const value = text.slice(i + 1, q);
            if (utf8Length(value) > maxField) {
              const spansLine = t !== -1 && t < q;
              failReason = spansLine ? 'unterminated_quote' : 'oversized_field';
              failDetail = spansLine
                ? `quoted field ${fields.length + 1} spans lines and exceeds ${maxField} bytes`
                : `field ${fields.length + 1} exceeds ${maxField} bytes`;
              break;
            }
          }
          let value = text.slice(i + 1, q);
          if (escaped) {
            if (!this.unescape && fields.length < MAX_DEFERRED_FIELDS) escapedMask |= 1 << fields.length;
            else value = value.replaceAll('""', '"');
          }
          fields.push(value);
          const c = text.charCodeAt(q + 1);
          if (c === COMMA) {
            i = q + 2;
            continue;
          }
          if (c === LF || c === CR) {
            termPos = q + 1;
            break;
          }
          if (q + 1 === n) {
            // Only reachable when final: the input ended right after the closing quote.
            termPos = n;
            break;
          }
          const spansLine = t !== -1 && t < q;
          failReason = spansLine ? 'unterminated_quote' : 'malformed_quote';
          failDetail = spansLine
            ? `quoted field ${fields.length} swallowed a line break (missing closing quote)`
            : `unexpected ${JSON.stringify(text[q + 1])} after closing quote of field ${fields.length}`;
          break;
        }
        // Unquoted field: ends at the next comma on this line, or at the line end.
        const comma = text.indexOf(',', i);
        if (comma !== -1 && (t === -1 || comma < t)) {
          if (comma - i > maxField && utf8Length(text.slice(i, comma)) > maxField) {
            failReason = 'oversized_field';
            failDetail = `field ${fields.length + 1} exceeds ${maxField} bytes`;
            break;
          }
          fields.push(text.slice(i, comma));
          i = comma + 1;
          continue;
        }
        if (t === -1 && !final) {
          if (n - i > maxField && utf8Length(text.slice(i)) > maxField) {
            failReason = 'oversized_field';
            failDetail = `field ${fields.length + 1} exceeds ${maxField} bytes`;
          } else if (n - pos > maxRecord) {
            failReason = 'oversized_record';
            failDetail = `record exceeds ${maxRecord} bytes`;
          } else {
            incomplete = true;
          }
          break;
        }
        const stop = t === -1 ? n : t;
        if (stop - i > maxField && utf8Length(text.slice(i, stop)) > maxField) {
          failReason = 'oversized_field';
          failDetail = `field ${fields.length + 1} exceeds ${maxField} bytes`;
          break;
        }
        fields.push(text.slice(i, stop));
        termPos = stop;
        break;
      }

      if (incomplete) {
        // Keep the partial record for the next block.
        this.carry = text.slice(pos);
        if (bad !== null) this.carryBad = shift(bad, -pos).filter((r) => r.end > 0);
        this.line = line;
        return;
      }

      if (
        failReason === null &&
        termPos - pos > maxRecord &&
        utf8Length(text.slice(pos, termPos)) > maxRecord
      ) {
        failReason = 'oversized_record';
        failDetail = `record exceeds ${maxRecord} bytes`;
      }

      if (failReason === null && termPos === n) {
        // The input ended inside this record: it may be cut short (head -c, a closed pipe).
        const isBad = bad !== null && overlaps(bad, pos, n);
        out.push({
          ok: false,
          line,
          raw: rawOf(text, pos, n),
          reason: isBad ? 'bad_utf8' : 'unterminated_record',
          detail: isBad
            ? 'record is not valid UTF-8'
            : 'the input ended in the middle of this record (no line terminator after it); it may be cut short',
        });
        pos = n;
        break;
      }

      if (failReason !== null) {
        // Report the first physical line and resume at the next one.
        const lineEnd = firstTerm === -1 ? n : firstTerm;
        const isBad = bad !== null && overlaps(bad, pos, lineEnd + 1);
        out.push({
          ok: false,
          line,
          raw: rawOf(text, pos, lineEnd),
          reason: isBad ? 'bad_utf8' : failReason,
          detail: isBad ? 'line is not valid UTF-8' : failDetail,
        });
        if (firstTerm === -1) {
          // The line is not finished: discard until its line terminator arrives.
          if (!final) this.skipping = true;
          pos = n;
          break record;
        }
        pos = this.terminatorEnd(text, firstTerm, final);
        line++;
        // The field scan may have looked past the resume point: forget the cached positions.
        lf = -2;
        cr = -2;
        continue;
      }

      // A complete record [pos, termPos) and its terminator.
      if (bad !== null && overlaps(bad, pos, termPos + 1)) {
        out.push({
          ok: false,
          line,
          raw: rawOf(text, pos, termPos),
          reason: 'bad_utf8',
          detail: 'record is not valid UTF-8',
        });
      } else {
        out.push({ ok: true, fields, line, raw: text.slice(pos, termPos), escaped: escapedMask });
      }
      line += firstTerm < termPos ? 1 + countLineBreaks(text, firstTerm, termPos) : 1;
      pos = this.terminatorEnd(text, termPos, final);
    }
    this.line = line;
  }
}

/** Line breaks (CRLF, CR or LF each count once) in text[from, to). */
function countLineBreaks(text: string, from: number, to: number): number {
  let count = 0;
  for (let k = from; k < to; k++) {
    const c = text.charCodeAt(k);
    if (c === LF) count++;
    else if (c === CR) {
      count++;
      if (k + 1 < to && text.charCodeAt(k + 1) === LF) k++;
    }
  }
  return count;
}

/** Index of the first CR or LF at or after `from` in `text`, or -1. */
function nextTerminator(text: string, from: number): number {
  const lf = text.indexOf('\n', from);
  const cr = text.indexOf('\r', from);
  return lf === -1 ? cr : cr === -1 || lf < cr ? lf : cr;
}

/** Index of the first CR or LF byte at or after `from`, or -1. */
function firstTerminator(bytes: Buffer, from: number): number {
  const lf = bytes.indexOf(LF, from);
  const cr = bytes.indexOf(CR, from);
  return lf === -1 ? cr : cr === -1 || lf < cr ? lf : cr;
}

/** Index of the last CR or LF byte, or -1. */
function lastTerminator(bytes: Buffer): number {
  return Math.max(bytes.lastIndexOf(LF), bytes.lastIndexOf(CR));
}

/** Raw text of a refused record, bounded. */
function rawOf(text: string, start: number, end: number): string {
  return text.slice(start, Math.min(end, start + MAX_ERROR_RAW));
}

function shift(ranges: BadRange[], by: number): BadRange[] {
  return ranges.map((r) => ({ start: r.start + by, end: r.end + by }));
}

function overlaps(ranges: BadRange[], start: number, end: number): boolean {
  for (const r of ranges) if (r.start < end && r.end > start) return true;
  return false;
}

/** Slow path for a block with invalid UTF-8: decode line by line and remember the bad lines. */
function decodeByLine(block: Buffer): { text: string; bad: BadRange[] } {
  const parts: string[] = [];
  const bad: BadRange[] = [];
  let offset = 0;
  let start = 0;
  while (start < block.length) {
    let stop = firstTerminator(block, start);
    stop = stop === -1 ? block.length : stop + 1;
    const lineBytes = block.subarray(start, stop);
    // Invalid sequences become U+FFFD in the text; the line is marked bad.
    const s = lineBytes.toString('utf8');
    if (!isUtf8(lineBytes)) bad.push({ start: offset, end: offset + s.length });
    parts.push(s);
    offset += s.length;
    start = stop;
  }
  return { text: parts.join(''), bad };
}

/**
 * Split a whole CSV text or buffer in one call (convenience for small inputs and tests).
 * @returns every record, in order.
 */
export function splitCsv(input: Buffer | string, options: CsvSplitterOptions = {}): CsvRecord[] {
  const splitter = new CsvRecordSplitter(options);
  const out = splitter.push(input);
  for (const r of splitter.end()) out.push(r);
  return out;
}
