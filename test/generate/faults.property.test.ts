/**
 * `generate --faults` takes text from the command line: whatever it gets, `parseFaults` returns
 * fault specs or throws NexusError BAD_REQUEST naming what is wrong, never another exception; and
 * every valid spec written in the documented syntax parses back to itself.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NexusError } from '../../src/errors.js';
import { FAULT_KINDS, parseFaults, type FaultSpec } from '../../src/generate/faults.js';

/** Fragments of the syntax, so random texts often get deep into the parser. */
const TOKENS = [
  ...FAULT_KINDS,
  ':',
  '/',
  '@',
  '-',
  ';',
  ',',
  '=',
  '*',
  'gpu',
  '3',
  '0',
  '10m',
  '1h',
  '90s',
  'bits=0x40',
  'code=79',
  'temp=95',
  'host-1',
  '',
  ' ',
  'NaN',
  '-1',
  '1e309',
  '__proto__',
  'constructor',
];

const isRefusal = (error: unknown): boolean =>
  error instanceof NexusError && error.code === 'BAD_REQUEST' && error.message.length > 0;

describe('parseFaults on any text', () => {
  it('returns specs or refuses with BAD_REQUEST, nothing else (token soup)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...TOKENS), { maxLength: 30 }), (tokens) => {
        try {
          const specs = parseFaults(tokens.join(''));
          for (const s of specs) {
            expect(FAULT_KINDS).toContain(s.kind);
            expect(s.toMs).toBeGreaterThan(s.fromMs);
          }
        } catch (error) {
          expect(isRefusal(error), String(error)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('returns specs or refuses with BAD_REQUEST, nothing else (any string)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 200 }), (text) => {
        try {
          parseFaults(text);
        } catch (error) {
          expect(isRefusal(error), String(error)).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('parses every valid spec back to itself', () => {
    const minutes = fc.integer({ min: 0, max: 600 });
    const spec = fc
      .record({
        kind: fc.constantFrom(...FAULT_KINDS),
        host: fc.stringMatching(/^[a-z0-9][a-z0-9-]{0,20}$/),
        gpu: fc.oneof(fc.integer({ min: 0, max: 15 }), fc.constant('*' as const)),
        from: minutes,
        length: fc.integer({ min: 1, max: 600 }),
        param: fc.option(fc.integer({ min: 0, max: 1000 }), { nil: undefined }),
      })
      .map(({ kind, host, gpu, from, length, param }) => ({
        text: `${kind}:${host}/${gpu === '*' ? '*' : `gpu${gpu}`}@${from}m-${from + length}m${param === undefined ? '' : `:count=${param}`}`,
        expected: {
          kind,
          host,
          gpu,
          fromMs: from * 60_000,
          toMs: (from + length) * 60_000,
          ...(param === undefined ? {} : { params: { count: param } }),
        } as FaultSpec,
      }));
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 5 }), (specs) => {
        const parsed = parseFaults(specs.map((s) => s.text).join('; '));
        expect(parsed).toEqual(specs.map((s) => s.expected));
      }),
      { numRuns: 500 },
    );
  });
});
