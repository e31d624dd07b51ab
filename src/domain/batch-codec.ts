/**
 * Wire format of a batch on the queue (every adapter carries these bytes). Format 2, binary and
 * columnar, little-endian:
 *
 *   header   'N' 'X' 'B' 0x02, id, source (strings as below), zero bytes to a multiple of 8
 *   body     varints: string count, label-set count, series count, sample count, time mode
 *            strings: each distinct string once, varint (byteLength * 2 + json) then its bytes: UTF-8,
 *              or (json = 1, only for text with lone surrogates, which UTF-8 cannot carry) a JSON
 *              string literal
 *            label sets: varint pair count, then varint string indexes key, value, ...
 *            series: 10 varint string indexes (clusterId .. namespace) and a varint label-set index
 *            dead letters, presence: varint byte length (0 = none) and JSON text (rare, small)
 *            zero bytes to a multiple of 8, then the columns, one entry per sample:
 *            values Float64; times Float64 (mode 0) or zigzag varint deltas of integer ms (mode 1,
 *            used when every time is an integer, not -0, and every step is below 2^52); series
 *            indexes as unsigned integers of 1, 2 or 4 bytes (the fewest that hold the series count)
 *
 * Floats are written as they are, so NaN and the infinities (which the store dead-letters as
 * `unstorable_row`) and -0 cross the queue unchanged (format 1's JSON turned NaN into null). The
 * dictionary is canonical: strings, label sets and series are numbered in order of first use and
 * deduplicated by content, so the bytes, and the batch id (a hash of the source and the body),
 * depend on the rows only, not on which objects they share. The same rows from the same source
 * always get the same id, which is what lets the ledger recognise a replayed batch. Format 1
 * (compact JSON, first byte '{') is still decoded, so batches an older streamer queued survive an
 * upgrade; ids of format 2 differ from those of format 1.
 */
import { createHash } from 'node:crypto';
import { endianness } from 'node:os';
import type { Batch, DeadLetter, Sample, ScrapePresence, SeriesKey } from './types.js';

const FORMAT_VERSION = 2;
const LEGACY_VERSION = 1;
const MAGIC = [0x4e, 0x58, 0x42] as const; // 'NXB'
const OPEN_BRACE = 0x7b;
const LITTLE_ENDIAN = endianness() === 'LE';
/** Time steps (ms) below this fit a zigzag varint in the safe-integer range. */
const MAX_VARINT_STEP = 2 ** 52;
/** Label sets with more series than this are searched by a key string instead of field by field. */
const LINEAR_SERIES = 8;

/** Varints per series in the dictionary: its 10 scalar fields (clusterId .. namespace), its label set. */
const SERIES_FIELDS = 11;

// ---------------------------------------------------------------------------------------------
// Encoding

const varintSize = (v: number): number => {
  let n = 1;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
};

function writeVarint(out: Uint8Array, p: number, v: number): number {
  while (v >= 0x80) {
    out[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[p++] = v;
  return p;
}

const align8 = (p: number): number => (p + 7) & ~7;

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/** A string as written: UTF-8, or a JSON literal when it holds lone surrogates. */
interface StringField {
  text: string;
  /** Varint header: byte length * 2 + 1 when `text` is a JSON literal. */
  head: number;
  bytes: number;
}

function stringField(s: string): StringField {
  const text = isWellFormed(s) ? s : JSON.stringify(s);
  const bytes = Buffer.byteLength(text, 'utf8');
  return { text, head: bytes * 2 + (text === s ? 0 : 1), bytes };
}

const stringSize = (f: StringField): number => varintSize(f.head) + f.bytes;

function writeString(out: Buffer, p: number, f: StringField): number {
  p = writeVarint(out, p, f.head);
  return p + out.write(f.text, p, f.bytes, 'utf8');
}

interface LabelSetEntry {
  index: number;
  /** Indexes of the series with this label set. */
  series: number[];
  /** The same, by {@link scalarIdentity}, once there are more than {@link LINEAR_SERIES}. */
  byScalars?: Map<string, number>;
  /** Another label set with the same hash. */
  next: LabelSetEntry | undefined;
}

const scalarIdentity = (s: SeriesKey): string =>
  `${s.clusterId}\u0000${s.hostname}\u0000${s.gpuId}\u0000${s.uuid}\u0000${s.device}\u0000${s.modelName}\u0000${s.metric}\u0000${s.container}\u0000${s.pod}\u0000${s.namespace}`;

const sameScalars = (a: SeriesKey, b: SeriesKey): boolean =>
  a.metric === b.metric &&
  a.uuid === b.uuid &&
  a.gpuId === b.gpuId &&
  a.hostname === b.hostname &&
  a.clusterId === b.clusterId &&
  a.device === b.device &&
  a.modelName === b.modelName &&
  a.container === b.container &&
  a.pod === b.pod &&
  a.namespace === b.namespace;

function sameNumbers(a: readonly number[], b: readonly number[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The body of a batch, planned: every section's contents and its size in bytes. */
class BodyPlan {
  readonly strings: StringField[] = [];
  private readonly stringIndex = new Map<string, number>();
  /** Per label set: pair count, then string indexes key, value, ... */
  readonly labelSets: number[][] = [];
  private readonly setByObject = new Map<Record<string, string>, LabelSetEntry>();
  /** Label sets by a hash of their string indexes. */
  private readonly setsByHash = new Map<number, LabelSetEntry>();
  /** Per series: the sample that introduced it. */
  readonly seriesOwner: Sample[] = [];
  /** Per series: string indexes of its 10 scalar fields, then its label set. */
  readonly seriesFields: number[] = [];
  readonly seriesOf: Uint32Array;
  readonly timeMode: 0 | 1;
  readonly deadLetters: string;
  readonly presence: string;
  readonly size: number;
  /** Offset of the columns from the start of the body. */
  readonly columnsAt: number;

  constructor(
    readonly samples: readonly Sample[],
    deadLetters: readonly DeadLetter[],
    presence: ScrapePresence | undefined,
  ) {
    const n = samples.length;
    this.seriesOf = new Uint32Array(n);
    let integral = true;
    let timeBytes = 0;
    let last = 0;
    for (let i = 0; i < n; i++) {
      const s = samples[i]!;
      this.seriesOf[i] = this.seriesIndex(s);
      if (integral) {
        const t = s.timestampMs;
        const step = t - last;
        if (Number.isSafeInteger(t) && !Object.is(t, -0) && Math.abs(step) < MAX_VARINT_STEP) {
          timeBytes += varintSize(step < 0 ? -2 * step - 1 : 2 * step);
          last = t;
        } else integral = false;
      }
    }
    this.timeMode = integral ? 1 : 0;
    if (!integral) timeBytes = 8 * n;
    this.deadLetters = deadLetters.length > 0 ? JSON.stringify(deadLetters) : '';
    this.presence = presence !== undefined ? JSON.stringify(presence) : '';

    let size =
      varintSize(this.strings.length) +
      varintSize(this.labelSets.length) +
      varintSize(this.seriesOwner.length) +
      varintSize(n) +
      1;
    for (const f of this.strings) size += stringSize(f);
    for (const set of this.labelSets) for (const v of set) size += varintSize(v);
    for (const v of this.seriesFields) size += varintSize(v);
    for (const json of [this.deadLetters, this.presence]) {
      const bytes = Buffer.byteLength(json, 'utf8');
      size += varintSize(bytes) + bytes;
    }
    this.columnsAt = align8(size);
    this.size = this.columnsAt + 8 * n + timeBytes + indexWidth(this.seriesOwner.length) * n;
  }

  private intern(s: string): number {
    let i = this.stringIndex.get(s);
    if (i === undefined) {
      i = this.strings.length;
      this.stringIndex.set(s, i);
      this.strings.push(stringField(s));
    }
    return i;
  }

  private labelSet(labels: Record<string, string>): LabelSetEntry {
    let entry = this.setByObject.get(labels);
    if (entry) return entry;
    const keys = Object.keys(labels);
    const set = [keys.length];
    let hash = keys.length;
    for (const k of keys) {
      const ki = this.intern(k);
      const vi = this.intern(labels[k]!);
      set.push(ki, vi);
      hash = (Math.imul(hash, 31) + ki) | 0;
      hash = (Math.imul(hash, 31) + vi) | 0;
    }
    // Equal labels in distinct objects are one label set: the bytes depend on content only.
    const first = this.setsByHash.get(hash);
    let candidate = first;
    while (candidate && !sameNumbers(this.labelSets[candidate.index]!, set)) candidate = candidate.next;
    entry = candidate;
    if (!entry) {
      entry = { index: this.labelSets.length, series: [], next: first };
      this.labelSets.push(set);
      this.setsByHash.set(hash, entry);
    }
    this.setByObject.set(labels, entry);
    return entry;
  }

  private seriesIndex(s: Sample): number {
    const entry = this.labelSet(s.labels);
    if (entry.byScalars) {
      const key = scalarIdentity(s);
      const found = entry.byScalars.get(key);
      if (found !== undefined) return found;
      const k = this.addSeries(s, entry);
      entry.byScalars.set(key, k);
      return k;
    }
    for (const k of entry.series) if (sameScalars(this.seriesOwner[k]!, s)) return k;
    const k = this.addSeries(s, entry);
    if (entry.series.length > LINEAR_SERIES) {
      entry.byScalars = new Map(entry.series.map((j) => [scalarIdentity(this.seriesOwner[j]!), j]));
    }
    return k;
  }

  private addSeries(s: Sample, entry: LabelSetEntry): number {
    const k = this.seriesOwner.length;
    const fields = this.seriesFields;
    fields.push(
      this.intern(s.clusterId),
      this.intern(s.hostname),
      this.intern(s.gpuId),
      this.intern(s.uuid),
      this.intern(s.device),
      this.intern(s.modelName),
      this.intern(s.metric),
      this.intern(s.container),
      this.intern(s.pod),
      this.intern(s.namespace),
      entry.index,
    );
    this.seriesOwner.push(s);
    entry.series.push(k);
    return k;
  }

  /** Write the body at `at` (a multiple of 8) of `out`; returns the end offset. */
  write(out: Buffer, at: number): number {
    const n = this.samples.length;
    let p = at;
    p = writeVarint(out, p, this.strings.length);
    p = writeVarint(out, p, this.labelSets.length);
    p = writeVarint(out, p, this.seriesOwner.length);
    p = writeVarint(out, p, n);
    out[p++] = this.timeMode;
    for (const f of this.strings) p = writeString(out, p, f);
    for (const set of this.labelSets) for (const v of set) p = writeVarint(out, p, v);
    for (const v of this.seriesFields) p = writeVarint(out, p, v);
    for (const json of [this.deadLetters, this.presence]) {
      const bytes = Buffer.byteLength(json, 'utf8');
      p = writeVarint(out, p, bytes);
      p += out.write(json, p, bytes, 'utf8');
    }
    p = at + this.columnsAt; // zero padding: `out` is freshly zeroed
    p = writeFloats(out, p, n, (i) => this.samples[i]!.value);
    if (this.timeMode === 0) p = writeFloats(out, p, n, (i) => this.samples[i]!.timestampMs);
    else {
      let last = 0;
      for (let i = 0; i < n; i++) {
        const t = this.samples[i]!.timestampMs;
        const step = t - last;
        p = writeVarint(out, p, step < 0 ? -2 * step - 1 : 2 * step);
        last = t;
      }
    }
    const width = indexWidth(this.seriesOwner.length);
    for (let i = 0; i < n; i++) {
      const k = this.seriesOf[i]!;
      out[p++] = k & 0xff;
      if (width >= 2) out[p++] = (k >>> 8) & 0xff;
      if (width === 4) {
        out[p++] = (k >>> 16) & 0xff;
        out[p++] = k >>> 24;
      }
    }
    return p;
  }
}

const indexWidth = (seriesCount: number): 1 | 2 | 4 =>
  seriesCount <= 0x100 ? 1 : seriesCount <= 0x10000 ? 2 : 4;

function writeFloats(out: Buffer, p: number, n: number, at: (i: number) => number): number {
  if (LITTLE_ENDIAN && (out.byteOffset + p) % 8 === 0) {
    const column = new Float64Array(out.buffer, out.byteOffset + p, n);
    for (let i = 0; i < n; i++) column[i] = at(i);
  } else {
    for (let i = 0; i < n; i++) out.writeDoubleLE(at(i), p + 8 * i);
  }
  return p + 8 * n;
}

/** A zeroed buffer of `size` bytes starting at offset 0 of its own memory (so columns align). */
const freshBuffer = (size: number): Buffer => Buffer.from(new ArrayBuffer(size));

function headerSize(id: StringField, source: StringField): number {
  return align8(MAGIC.length + 1 + stringSize(id) + stringSize(source));
}

function writeHeader(out: Buffer, id: StringField, source: StringField): void {
  let p = 0;
  for (const b of MAGIC) out[p++] = b;
  out[p++] = FORMAT_VERSION;
  p = writeString(out, p, id);
  writeString(out, p, source);
}

/** Length of the ids {@link encodeNewBatch} gives (hex characters of a SHA-256 prefix). */
const ID_CHARS = 32;

/**
 * Encode rows into a batch: its content-derived id and the queue payload (format 2), computed in
 * one pass. The same rows from the same source give the same id; a scrape's `presence` is part of
 * the contents (two scrapes that read the same rows are two batches).
 */
export function encodeNewBatch(
  source: string,
  samples: Sample[],
  deadLetters: DeadLetter[],
  presence?: ScrapePresence,
): { id: string; payload: Uint8Array } {
  const body = new BodyPlan(samples, deadLetters, presence);
  const sourceField = stringField(source);
  const placeholder = stringField('0'.repeat(ID_CHARS));
  const at = headerSize(placeholder, sourceField);
  const out = freshBuffer(at + body.size);
  body.write(out, at);
  const id = createHash('sha256')
    .update(source)
    .update('\u0000')
    .update(out.subarray(at))
    .digest('hex')
    .slice(0, ID_CHARS);
  writeHeader(out, stringField(id), sourceField);
  return { id, payload: out };
}

/**
 * Largest queue payload a producer makes: below NATS's default `max_payload` (1 MiB) and etcd's
 * request limit (1.5 MiB). 2,000 rows of samples take about 140 KiB; 2,000 dead letters (each
 * keeps its raw line) can take over 1 MiB, so a batch of them is split.
 */
export const MAX_BATCH_BYTES = 512 * 1024;

/** One batch of {@link encodeBatchesWithin}: its rows, id and payload. */
export interface EncodedBatch {
  id: string;
  payload: Uint8Array;
  samples: Sample[];
  deadLetters: DeadLetter[];
  presence?: ScrapePresence;
}

/**
 * Encode rows as one batch, or, when its payload would pass `maxBytes`, as consecutive halves
 * (recursively; the rows keep their order, a scrape's `presence` rides on the last part). Splitting
 * is a function of the rows, so the same rows give the same batch ids again.
 */
export function encodeBatchesWithin(
  source: string,
  samples: Sample[],
  deadLetters: DeadLetter[],
  presence?: ScrapePresence,
  maxBytes = MAX_BATCH_BYTES,
): EncodedBatch[] {
  const { id, payload } = encodeNewBatch(source, samples, deadLetters, presence);
  const rows = samples.length + deadLetters.length;
  if (payload.byteLength <= maxBytes || rows <= 1) {
    const batch: EncodedBatch = { id, payload, samples, deadLetters };
    if (presence !== undefined) batch.presence = presence;
    return [batch];
  }
  const half = Math.ceil(rows / 2);
  const cut = Math.min(half, samples.length);
  const deadCut = half - cut;
  return [
    ...encodeBatchesWithin(source, samples.slice(0, cut), deadLetters.slice(0, deadCut), undefined, maxBytes),
    ...encodeBatchesWithin(source, samples.slice(cut), deadLetters.slice(deadCut), presence, maxBytes),
  ];
}

/** The id {@link encodeNewBatch} gives these rows. */
export function batchIdFor(source: string, samples: Sample[], deadLetters: DeadLetter[]): string {
  return encodeNewBatch(source, samples, deadLetters).id;
}

/** Encode a batch that already has an id (tests, dead-letter batches), in format 2. */
export function encodeBatch(batch: Batch): Uint8Array {
  const body = new BodyPlan(batch.samples, batch.deadLetters, batch.presence);
  const id = stringField(batch.id);
  const source = stringField(batch.source);
  const at = headerSize(id, source);
  const out = freshBuffer(at + body.size);
  writeHeader(out, id, source);
  body.write(out, at);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** Reads a format 2 payload front to back; every read is bounds-checked (payloads are not trusted). */
class Reader {
  p = 0;
  constructor(readonly buf: Buffer) {}

  fail(what: string): never {
    throw new Error(`not a batch of format v${FORMAT_VERSION}: ${what} at byte ${this.p}`);
  }

  need(bytes: number, what: string): void {
    if (bytes > this.buf.length - this.p) this.fail(`truncated ${what}`);
  }

  varint(what: string): number {
    const b = this.buf;
    let v = 0;
    let scale = 1;
    for (let k = 0; k < 8; k++) {
      if (this.p >= b.length) this.fail(`truncated ${what}`);
      const byte = b[this.p++]!;
      v += (byte & 0x7f) * scale;
      if (byte < 0x80) return v;
      scale *= 0x80;
    }
    return this.fail(`overlong ${what}`);
  }

  /** A count of items that take at least `minBytes` each in what is left. */
  count(minBytes: number, what: string): number {
    const n = this.varint(what);
    if (n * minBytes > this.buf.length - this.p) this.fail(`${what} ${n} exceeds the payload`);
    return n;
  }

  index(limit: number, what: string): number {
    const i = this.varint(what);
    if (i >= limit) this.fail(`${what} ${i} out of range`);
    return i;
  }

  string(what: string): string {
    const head = this.varint(what);
    const bytes = Math.floor(head / 2);
    this.need(bytes, what);
    const text = this.buf.toString('utf8', this.p, this.p + bytes);
    this.p += bytes;
    if (head % 2 === 0) return text;
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed !== 'string') this.fail(`malformed ${what}`);
    return parsed;
  }

  json(what: string): unknown {
    const bytes = this.varint(what);
    if (bytes === 0) return undefined;
    this.need(bytes, what);
    const text = this.buf.toString('utf8', this.p, this.p + bytes);
    this.p += bytes;
    return JSON.parse(text);
  }

  /** `n` little-endian Float64s at an offset that is a multiple of 8 from the payload start. */
  floats(n: number, what: string): Float64Array {
    this.need(8 * n, what);
    const b = this.buf;
    const at = b.byteOffset + this.p;
    let column: Float64Array;
    if (LITTLE_ENDIAN && at % 8 === 0) column = new Float64Array(b.buffer, at, n);
    else if (LITTLE_ENDIAN) {
      // A payload at an unaligned offset of its memory (a slice of a pooled Buffer): copy.
      column = new Float64Array(n);
      new Uint8Array(column.buffer).set(b.subarray(this.p, this.p + 8 * n));
    } else {
      column = new Float64Array(n);
      for (let i = 0; i < n; i++) column[i] = b.readDoubleLE(this.p + 8 * i);
    }
    this.p += 8 * n;
    return column;
  }
}

/**
 * Decode a queue payload of format 2 or 1; throws on a payload that is not a batch. The batch's
 * columns are views of `payload` where aligned: the caller must not reuse its bytes while the batch
 * is in use (every queue adapter hands out a payload of its own).
 */
export function decodeBatch(payload: Uint8Array): Batch {
  if (payload[0] === OPEN_BRACE) return decodeLegacy(payload);
  const buf = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
  const r = new Reader(buf);
  if (buf.length < 4 || MAGIC.some((b, i) => buf[i] !== b) || buf[3] !== FORMAT_VERSION) {
    throw new Error(`not a batch of format v${FORMAT_VERSION} or v${LEGACY_VERSION}`);
  }
  r.p = 4;
  const id = r.string('id');
  const source = r.string('source');
  r.p = align8(r.p);

  const stringCount = r.count(1, 'string count');
  const setCount = r.count(1, 'label set count');
  const seriesCount = r.count(SERIES_FIELDS, 'series count');
  const width = indexWidth(seriesCount);
  const n = r.count(8 + 1 + width, 'sample count');
  r.need(1, 'time mode');
  const timeMode = buf[r.p++];
  if (timeMode !== 0 && timeMode !== 1) r.fail(`unknown time mode ${timeMode}`);

  const strings: string[] = new Array(stringCount);
  for (let i = 0; i < stringCount; i++) strings[i] = r.string('string');
  const sets: Record<string, string>[] = new Array(setCount);
  for (let i = 0; i < setCount; i++) {
    const pairs = r.count(2, 'label count');
    const labels: Record<string, string> = {};
    for (let j = 0; j < pairs; j++) {
      const key = strings[r.index(stringCount, 'label key')]!;
      const value = strings[r.index(stringCount, 'label value')]!;
      // As JSON.parse does: `__proto__` is a label like any other, not the prototype.
      if (key === '__proto__')
        Object.defineProperty(labels, key, { value, enumerable: true, writable: true });
      else labels[key] = value;
    }
    sets[i] = labels;
  }
  const series: SeriesKey[] = new Array(seriesCount);
  // Called in the order of the fields as written (object literals evaluate left to right).
  const s = (): string => strings[r.index(stringCount, 'series field')]!;
  for (let k = 0; k < seriesCount; k++) {
    series[k] = {
      clusterId: s(),
      hostname: s(),
      gpuId: s(),
      uuid: s(),
      device: s(),
      modelName: s(),
      metric: s(),
      container: s(),
      pod: s(),
      namespace: s(),
      labels: sets[r.index(setCount, 'label set')]!,
    };
  }
  const deadLetters = r.json('dead letters') ?? [];
  if (!Array.isArray(deadLetters)) r.fail('malformed dead letters');
  const presence = r.json('presence');

  r.p = align8(r.p);
  const values = r.floats(n, 'values');
  let times: Float64Array;
  if (timeMode === 0) times = r.floats(n, 'times');
  else {
    times = new Float64Array(n);
    let t = 0;
    for (let i = 0; i < n; i++) {
      const z = r.varint('time');
      t += z % 2 === 0 ? z / 2 : -(z + 1) / 2;
      times[i] = t;
    }
  }
  r.need(width * n, 'series indexes');
  const seriesOf = indexColumn(buf, r.p, width, n);
  for (let i = 0; i < n; i++) {
    if (seriesOf[i]! >= seriesCount)
      throw new Error(`batch ${id}: sample refers to unknown series ${seriesOf[i]}`);
  }
  r.p += width * n;
  if (r.p !== buf.length) r.fail(`${buf.length - r.p} bytes after the end`);
  const batch = columnarBatch(id, source, { series, seriesOf, times, values }, deadLetters as DeadLetter[]);
  if (presence !== undefined) batch.presence = checkedPresence(id, presence);
  return batch;
}

/** The `n` series indexes of `width` bytes at `at`: a view of `buf` when aligned, else a copy. */
function indexColumn(buf: Buffer, at: number, width: number, n: number): SampleColumns['seriesOf'] {
  const offset = buf.byteOffset + at;
  if (width === 1) return new Uint8Array(buf.buffer, offset, n);
  if (LITTLE_ENDIAN && offset % width === 0)
    return width === 2 ? new Uint16Array(buf.buffer, offset, n) : new Uint32Array(buf.buffer, offset, n);
  const column = width === 2 ? new Uint16Array(n) : new Uint32Array(n);
  for (let i = 0; i < n; i++)
    column[i] = width === 2 ? buf.readUInt16LE(at + 2 * i) : buf.readUInt32LE(at + 4 * i);
  return column;
}

/**
 * A decoded batch's samples as the columns format 2 carries: sample `i` is of series
 * `series[seriesOf[i]]`, at `times[i]`, with `values[i]`. A reader that takes them (the SQLite
 * write path, the hierarchy writer) builds no object per sample: those were most of the write path's
 * garbage.
 */
export interface SampleColumns {
  readonly series: readonly SeriesKey[];
  readonly seriesOf: Uint8Array | Uint16Array | Uint32Array;
  readonly times: Float64Array;
  readonly values: Float64Array;
}

const columnsOfBatch = new WeakMap<Batch, SampleColumns>();

/**
 * The columns of a batch {@link decodeBatch} returned, or undefined for any other batch (a copy
 * of one included: `{ ...batch, samples }` holds what its `samples` say).
 */
export function sampleColumns(batch: Batch): SampleColumns | undefined {
  return columnsOfBatch.get(batch);
}

/**
 * A batch whose `samples` are built from `columns` when first read. Assigning `samples` drops the
 * columns (readers then take the new array); changing the built array in place is not seen by
 * readers of the columns, and nothing does.
 */
function columnarBatch(id: string, source: string, columns: SampleColumns, deadLetters: DeadLetter[]): Batch {
  let samples: Sample[] | undefined;
  const batch = { id, source, deadLetters } as Batch;
  Object.defineProperty(batch, 'samples', {
    enumerable: true,
    get: () => (samples ??= samplesOf(columns)),
    set: (value: Sample[]) => {
      columnsOfBatch.delete(batch);
      samples = value;
    },
  });
  columnsOfBatch.set(batch, columns);
  return batch;
}

function samplesOf({ series, seriesOf, times, values }: SampleColumns): Sample[] {
  const samples: Sample[] = new Array(times.length);
  for (let i = 0; i < samples.length; i++) {
    const key = series[seriesOf[i]!]!;
    samples[i] = {
      clusterId: key.clusterId,
      hostname: key.hostname,
      gpuId: key.gpuId,
      uuid: key.uuid,
      device: key.device,
      modelName: key.modelName,
      metric: key.metric,
      container: key.container,
      pod: key.pod,
      namespace: key.namespace,
      labels: key.labels,
      timestampMs: times[i]!,
      value: values[i]!,
    };
  }
  return samples;
}

/**
 * A readable rendering of a queue payload, at most `maxChars` characters (for the `raw` of a
 * whole-item dead letter): a decodable format 2 batch as the format 1 JSON text of its rows, anything
 * else as its bytes read as UTF-8.
 */
export function payloadText(payload: Uint8Array, maxChars: number): string {
  let text: string;
  if (payload[0] === MAGIC[0] && payload[1] === MAGIC[1] && payload[2] === MAGIC[2]) {
    try {
      text = legacyText(decodeBatch(payload));
    } catch {
      text = `undecodable batch payload of ${payload.length} bytes: ${Buffer.from(payload.subarray(0, maxChars)).toString('base64')}`;
    }
  } else
    text = Buffer.from(payload.buffer, payload.byteOffset, Math.min(payload.length, maxChars)).toString();
  return text.length > maxChars ? text.slice(0, maxChars) : text;
}

// ---------------------------------------------------------------------------------------------
// Format 1 (compact JSON): decoded for payloads queued before the upgrade; encoded for comparison.

interface LegacyWire {
  v: number;
  id: string;
  source: string;
  series: SeriesKey[];
  samples: [number, number, number][];
  deadLetters?: DeadLetter[];
  presence?: ScrapePresence;
}

/** The format 1 text of a batch: a series dictionary, then [seriesIndex, timestampMs, value] triples. */
function legacyText(batch: Batch): string {
  const index = new Map<Record<string, string>, Map<string, number>>();
  const series: SeriesKey[] = [];
  const rows: [number, number, number][] = new Array(batch.samples.length);
  for (let n = 0; n < batch.samples.length; n++) {
    const s = batch.samples[n]!;
    let byScalars = index.get(s.labels);
    if (!byScalars) index.set(s.labels, (byScalars = new Map()));
    const scalars = scalarIdentity(s);
    let i = byScalars.get(scalars);
    if (i === undefined) {
      i = series.length;
      byScalars.set(scalars, i);
      series.push({
        clusterId: s.clusterId,
        hostname: s.hostname,
        gpuId: s.gpuId,
        uuid: s.uuid,
        device: s.device,
        modelName: s.modelName,
        metric: s.metric,
        container: s.container,
        pod: s.pod,
        namespace: s.namespace,
        labels: s.labels,
      });
    }
    rows[n] = [i, s.timestampMs, s.value];
  }
  const wire: LegacyWire = {
    v: LEGACY_VERSION,
    id: batch.id,
    source: batch.source,
    series,
    samples: rows,
    deadLetters: batch.deadLetters,
  };
  if (batch.presence !== undefined) wire.presence = batch.presence;
  return JSON.stringify(wire);
}

/**
 * Encode a batch in format 1, as streamers before format 2 did (for tests and the codec bench).
 * Format 1 cannot carry NaN or the infinities (JSON writes them as null).
 */
export function encodeLegacyBatch(batch: Batch): Uint8Array {
  return Buffer.from(legacyText(batch), 'utf8');
}

function decodeLegacy(payload: Uint8Array): Batch {
  const wire = JSON.parse(
    Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8'),
  ) as LegacyWire;
  if (wire.v !== LEGACY_VERSION || typeof wire.id !== 'string' || !Array.isArray(wire.samples)) {
    throw new Error(`not a batch of format v${LEGACY_VERSION}`);
  }
  const samples: Sample[] = new Array(wire.samples.length);
  for (let n = 0; n < wire.samples.length; n++) {
    const [i, timestampMs, value] = wire.samples[n]!;
    const k = wire.series[i];
    if (!k) throw new Error(`batch ${wire.id}: sample refers to unknown series ${i}`);
    samples[n] = {
      clusterId: k.clusterId,
      hostname: k.hostname,
      gpuId: k.gpuId,
      uuid: k.uuid,
      device: k.device,
      modelName: k.modelName,
      metric: k.metric,
      container: k.container,
      pod: k.pod,
      namespace: k.namespace,
      labels: k.labels,
      timestampMs,
      value,
    };
  }
  const batch: Batch = { id: wire.id, source: wire.source, samples, deadLetters: wire.deadLetters ?? [] };
  if (wire.presence !== undefined) batch.presence = checkedPresence(wire.id, wire.presence);
  return batch;
}

/** The presence of a decoded batch, checked for shape (a payload from elsewhere is not trusted). */
function checkedPresence(id: string, value: unknown): ScrapePresence {
  const p = value as Partial<ScrapePresence> | null;
  const ok =
    typeof p === 'object' &&
    p !== null &&
    typeof p.target === 'string' &&
    typeof p.clusterId === 'string' &&
    typeof p.scrapeMs === 'number' &&
    Array.isArray(p.gpus) &&
    p.gpus.every(
      (g) =>
        typeof g === 'object' &&
        g !== null &&
        typeof g.hostname === 'string' &&
        typeof g.gpuId === 'string' &&
        typeof g.uuid === 'string' &&
        (g.migInstance === undefined || typeof g.migInstance === 'string'),
    );
  if (!ok) throw new Error(`batch ${id}: malformed presence`);
  return p as ScrapePresence;
}
