/**
 * The byte format of the SQLite store's compacted chunks: one series' samples of one window,
 * ascending and without repeats of a time, exactly (times and values bit for bit).
 *
 * - byte 0: 1 when every time is a whole millisecond within 2^50 ms of the first (then times are
 *   delta-of-delta encoded), else 0 (then each time is a float64);
 * - times: the first as a little-endian float64, then the first delta and each delta-of-delta as
 *   zigzag varints (scrapes at a steady interval cost one byte a sample);
 * - values: each value's float64 bits XORed with the previous value's, as one header byte (high
 *   nibble: leading zero bytes, low nibble: trailing zero bytes; 0x80 for a repeat) and the bytes in
 *   between, most significant first (a repeated value costs one byte, as in Gorilla, by bytes).
 */

const MAX_DELTA = 2 ** 50;

/** Growable byte buffer. */
class Bytes {
  buf = new Uint8Array(256);
  length = 0;

  reserve(n: number): void {
    if (this.length + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(b: number): void {
    this.reserve(1);
    this.buf[this.length++] = b;
  }

  /** A non-negative integer below 2^53, 7 bits a byte. */
  varint(v: number): void {
    this.reserve(8);
    while (v >= 128) {
      this.buf[this.length++] = (v % 128) | 128;
      v = Math.floor(v / 128);
    }
    this.buf[this.length++] = v;
  }

  float64(v: number): void {
    this.reserve(8);
    new DataView(this.buf.buffer, this.buf.byteOffset + this.length, 8).setFloat64(0, v, true);
    this.length += 8;
  }

  done(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

const zigzag = (v: number): number => (v >= 0 ? v * 2 : -v * 2 - 1);
const unzigzag = (z: number): number => (z % 2 === 0 ? z / 2 : -(z + 1) / 2);

/** True when the times can be delta-of-delta encoded exactly. */
function wholeMilliseconds(ts: ArrayLike<number>): boolean {
  for (let i = 0; i < ts.length; i++) {
    if (!Number.isInteger(ts[i]!)) return false;
    if (i > 0 && Math.abs(ts[i]! - ts[i - 1]!) >= MAX_DELTA) return false;
  }
  return true;
}

/**
 * Encode ascending samples (distinct times).
 * @throws RangeError when there are none, or times and values differ in length
 */
export function encodeChunk(ts: ArrayLike<number>, values: ArrayLike<number>): Uint8Array {
  const n = ts.length;
  if (n === 0 || values.length !== n) throw new RangeError('a chunk holds one or more samples, a value each');
  const out = new Bytes();
  const whole = wholeMilliseconds(ts);
  out.byte(whole ? 1 : 0);
  if (whole) {
    out.float64(ts[0]!);
    let previousDelta = 0;
    for (let i = 1; i < n; i++) {
      const delta = ts[i]! - ts[i - 1]!;
      out.varint(zigzag(delta - previousDelta));
      previousDelta = delta;
    }
  } else {
    for (let i = 0; i < n; i++) out.float64(ts[i]!);
  }
  const view = new DataView(new ArrayBuffer(8));
  let prevHi = 0;
  let prevLo = 0;
  const word = new Uint8Array(8);
  for (let i = 0; i < n; i++) {
    view.setFloat64(0, values[i]!);
    const hi = view.getUint32(0);
    const lo = view.getUint32(4);
    const xhi = (hi ^ prevHi) >>> 0;
    const xlo = (lo ^ prevLo) >>> 0;
    prevHi = hi;
    prevLo = lo;
    if (xhi === 0 && xlo === 0) {
      out.byte(0x80);
      continue;
    }
    for (let b = 0; b < 4; b++) {
      word[b] = (xhi >>> (24 - 8 * b)) & 0xff;
      word[4 + b] = (xlo >>> (24 - 8 * b)) & 0xff;
    }
    let lead = 0;
    while (word[lead] === 0) lead++;
    let trail = 0;
    while (word[7 - trail] === 0) trail++;
    out.byte((lead << 4) | trail);
    out.reserve(8 - lead - trail);
    for (let b = lead; b < 8 - trail; b++) out.buf[out.length++] = word[b]!;
  }
  return out.done();
}

/** The samples of a chunk, ascending. */
export interface DecodedChunk {
  ts: number[];
  values: number[];
}

/**
 * Decode `n` samples of `data` (as {@link encodeChunk} wrote them).
 * @throws RangeError when the bytes end before `n` samples, or go on after them
 */
export function decodeChunk(data: Uint8Array, n: number): DecodedChunk {
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  const need = (k: number): void => {
    if (at + k > data.length) throw new RangeError('chunk bytes end before its samples');
  };
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (;;) {
      need(1);
      const b = data[at++]!;
      v += (b & 127) * scale;
      if (b < 128) return v;
      scale *= 128;
    }
  };
  need(1);
  const whole = data[at++] === 1;
  const ts = new Array<number>(n);
  if (whole) {
    need(8);
    ts[0] = dv.getFloat64(at, true);
    at += 8;
    let delta = 0;
    for (let i = 1; i < n; i++) {
      delta += unzigzag(varint());
      ts[i] = ts[i - 1]! + delta;
    }
  } else {
    need(8 * n);
    for (let i = 0; i < n; i++, at += 8) ts[i] = dv.getFloat64(at, true);
  }
  const values = new Array<number>(n);
  const view = new DataView(new ArrayBuffer(8));
  let hi = 0;
  let lo = 0;
  for (let i = 0; i < n; i++) {
    need(1);
    const header = data[at++]!;
    if (header !== 0x80) {
      const lead = header >> 4;
      const trail = header & 15;
      const width = 8 - lead - trail;
      need(width);
      let xhi = 0;
      let xlo = 0;
      for (let b = lead; b < 8 - trail; b++) {
        const byte = data[at++]!;
        if (b < 4) xhi += byte * 2 ** (24 - 8 * b);
        else xlo += byte * 2 ** (24 - 8 * (b - 4));
      }
      hi = (hi ^ xhi) >>> 0;
      lo = (lo ^ xlo) >>> 0;
    }
    view.setUint32(0, hi);
    view.setUint32(4, lo);
    values[i] = view.getFloat64(0);
  }
  if (at !== data.length) throw new RangeError('chunk bytes do not end with its samples');
  return { ts, values };
}
