// The remote-write receiver's snappy block decoder: round trips with snappyjs's compressor, and
// malformed blocks (among them the one that held snappyjs's own decoder for minutes) refused at once.
import fc from 'fast-check';
import snappy from 'snappyjs';
import { describe, expect, it } from 'vitest';
import { SnappyBlockError, uncompressSnappyBlock } from '../../src/ingest/snappy-block.js';

const reasonOf = (input: Uint8Array, maxBytes = 1 << 20): string => {
  try {
    uncompressSnappyBlock(input, maxBytes);
    return 'decoded';
  } catch (error) {
    expect(error).toBeInstanceOf(SnappyBlockError);
    return `${(error as SnappyBlockError).reason}: ${(error as Error).message}`;
  }
};

describe('uncompressSnappyBlock', () => {
  it('decodes what snappyjs compresses, byte for byte (repeats, long literals, empty)', () => {
    const repeated = new TextEncoder().encode('DCGM_FI_DEV_GPU_UTIL{gpu="0"} 42\n'.repeat(2000));
    const noise = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7919 + (i >>> 3)) & 0xff);
    for (const data of [new Uint8Array(0), repeated, noise, new Uint8Array(100_000).fill(7)]) {
      expect(
        Buffer.from(uncompressSnappyBlock(snappy.compress(data), 1 << 20)).equals(Buffer.from(data)),
      ).toBe(true);
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), fc.nat(8), (bytes, repeat) => {
        const data = new Uint8Array(bytes.length * (repeat + 1));
        for (let r = 0; r <= repeat; r++) data.set(bytes, r * bytes.length);
        expect(
          Buffer.from(uncompressSnappyBlock(snappy.compress(data), 1 << 20)).equals(Buffer.from(data)),
        ).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('refuses at once a random body that kept snappyjs 0.7 busy for 2.5 s (others, for minutes)', () => {
    // 341 random bytes from a fuzz run; a literal length there turns negative in 32-bit maths.
    const body = Buffer.from(
      '43fc054409ce4bfe87b145a1aaab53ae2b0297ce60dcb3ff15c8cefbca3daf6f15eb9ed73d1e6a126b996976c1da772a' +
        'f413ed2c724e9765a8ce1411f364a4b121508d615211c0f25f6119aa3a2ca11c28c907269012a7aaf638d49f21ee1606' +
        'bd207ad2fb22411b05b0b50b12791b7460361399ebe07f95bf08281d8ea636bcee6bd95fa02c74eea1039e2c4e9f1aae' +
        'ed8d79da207f30149f94ab0860af2aeeb004e4a1645e45eea862039052b2c77fa77dbf7f1fc3a72ca109b5278531d3a1' +
        '71f9cc34b9bcf655a958fb77318af6c6f3017ce822f5a569f135c588702f7ad377bf1b9ddadb40bf828e9fa32c4a04fb' +
        '9462c20d0fe0adaae1ff9ed694719d40113fb17a659b12ac7a4214c2df70488684d498bc56f99521f54f5777a518e881' +
        '31f0a5c1141eb761f98f68102c5dac215729fadf6d072408066104d5a85a002f78c644c195066b497dbdc1b9dbb1ccb4' +
        '0eec46c5fb',
      'hex',
    );
    const started = performance.now();
    expect(reasonOf(body, 64 * 1024)).toMatch(/^invalid: invalid snappy block: /);
    expect(performance.now() - started).toBeLessThan(100);
    // A literal with a 4-byte length of 2^32 - 1 (+1) on a short input.
    expect(reasonOf(Uint8Array.from([10, 0xfc, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]))).toBe(
      'invalid: invalid snappy block: literal runs past the input',
    );
  });

  it('refuses every other malformed block with a reason, and a declared length past the limit', () => {
    expect(reasonOf(Uint8Array.from([]))).toMatch(/^invalid: .*preamble/);
    expect(reasonOf(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toMatch(/^invalid: .*preamble/);
    expect(reasonOf(Uint8Array.from([0x80, 0x80, 0x80, 0x80, 0x10]))).toMatch(/^invalid: .*preamble/); // 2^32
    expect(reasonOf(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]))).toMatch(/^too_large: /); // 2^32 - 1
    expect(reasonOf(Uint8Array.from([100, 0]), 99)).toBe(
      'too_large: the uncompressed length of 100 bytes is larger than the limit of 99',
    );
    expect(reasonOf(Uint8Array.from([3, 0x08, 1, 2]))).toMatch(/literal runs past the input/); // 3 bytes, 2 given
    expect(reasonOf(Uint8Array.from([1, 0x04, 1, 2]))).toMatch(/literal runs past the declared length/);
    expect(reasonOf(Uint8Array.from([8, 0x01, 0x01]))).toMatch(/copy offset outside the output/); // nothing to copy yet
    expect(reasonOf(Uint8Array.from([5, 0x00, 9, 0x05, 0x01]))).toMatch(/copy runs past the declared length/);
    expect(reasonOf(Uint8Array.from([5, 0x00, 9, 0x02]))).toMatch(/truncated copy/);
    expect(reasonOf(Uint8Array.from([4, 0x00, 9]))).toMatch(/1 bytes decoded, 4 declared/);
    // A copy that overlaps its own output repeats the pattern: "a" then copy(offset 1, length 4).
    expect([...uncompressSnappyBlock(Uint8Array.from([5, 0x00, 97, 0x01, 0x01]), 100)]).toEqual([
      97, 97, 97, 97, 97,
    ]);
  });

  it('answers any byte string within milliseconds: decoded or SnappyBlockError', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const started = performance.now();
        const reason = reasonOf(bytes, 64 * 1024);
        expect(reason.length).toBeGreaterThan(0);
        expect(performance.now() - started).toBeLessThan(250);
      }),
      { numRuns: 3000 },
    );
  });
});
