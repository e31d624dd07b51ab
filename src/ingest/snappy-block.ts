/**
 * Snappy block decompression (the format of a remote-write body) with every length and offset
 * checked against the input and the declared output. snappyjs 0.7's decoder trusts a literal's
 * 4-byte length: one of 2^31 or more turns negative, moves its read position backwards, and the
 * loop then walks a few billion positions (a 229-byte body held the event loop for minutes). The
 * compressor side stays snappyjs's.
 */

/** Why a body is not a snappy block, or is too large once decompressed. */
export class SnappyBlockError extends Error {
  constructor(
    message: string,
    readonly reason: 'invalid' | 'too_large',
  ) {
    super(message);
    this.name = 'SnappyBlockError';
  }
}

const invalid = (detail: string): SnappyBlockError =>
  new SnappyBlockError(`invalid snappy block: ${detail}`, 'invalid');

/** Little-endian unsigned integer of `bytes` bytes at `at` (at most 4: no 32-bit overflow). */
function readLE(input: Uint8Array, at: number, bytes: number): number {
  let value = 0;
  for (let i = bytes - 1; i >= 0; i--) value = value * 256 + input[at + i]!;
  return value;
}

/**
 * Decompress one snappy block. Rejects with SnappyBlockError `too_large` when its declared length
 * passes `maxBytes`, `invalid` on any malformed element; work is linear in the output's length.
 */
export function uncompressSnappyBlock(input: Uint8Array, maxBytes: number): Uint8Array {
  // The preamble: the uncompressed length as a varint of at most 5 bytes (32 bits).
  let length = 0;
  let pos = 0;
  for (let shift = 0; ; shift += 7) {
    if (pos >= input.length || shift > 28) throw invalid('bad length preamble');
    const byte = input[pos++]!;
    length += (byte & 0x7f) * 2 ** shift;
    if (byte < 0x80) break;
  }
  if (length > 0xffffffff) throw invalid('bad length preamble');
  if (length > maxBytes)
    throw new SnappyBlockError(
      `the uncompressed length of ${length} bytes is larger than the limit of ${maxBytes}`,
      'too_large',
    );
  const out = new Uint8Array(length);
  let outPos = 0;
  while (pos < input.length) {
    const tag = input[pos++]!;
    const kind = tag & 3;
    if (kind === 0) {
      let len = (tag >>> 2) + 1;
      if (len > 60) {
        const extra = len - 60;
        if (pos + extra > input.length) throw invalid('truncated literal length');
        len = readLE(input, pos, extra) + 1;
        pos += extra;
      }
      if (len > input.length - pos) throw invalid('literal runs past the input');
      if (len > length - outPos) throw invalid('literal runs past the declared length');
      out.set(input.subarray(pos, pos + len), outPos);
      pos += len;
      outPos += len;
      continue;
    }
    let len: number;
    let offset: number;
    if (kind === 1) {
      if (pos + 1 > input.length) throw invalid('truncated copy');
      len = ((tag >>> 2) & 7) + 4;
      offset = ((tag >>> 5) << 8) | input[pos]!;
      pos += 1;
    } else {
      const bytes = kind === 2 ? 2 : 4;
      if (pos + bytes > input.length) throw invalid('truncated copy');
      len = (tag >>> 2) + 1;
      offset = readLE(input, pos, bytes);
      pos += bytes;
    }
    if (offset === 0 || offset > outPos) throw invalid('copy offset outside the output');
    if (len > length - outPos) throw invalid('copy runs past the declared length');
    // Byte by byte: a copy may overlap what it writes (offset < len repeats a pattern).
    for (let i = 0; i < len; i++, outPos++) out[outPos] = out[outPos - offset]!;
  }
  if (outPos !== length) throw invalid(`${outPos} bytes decoded, ${length} declared`);
  return out;
}
