/**
 * The PromQL parser takes outside text (the `query` and `match[]` parameters): whatever it gets, it
 * returns a syntax tree or throws PromQLError('bad_data'), never another exception, and it never
 * hangs on long or deeply nested input.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parsePromQL, parseSeriesSelector } from '../../src/promql/engine.js';
import { PromQLError } from '../../src/promql/types.js';

/** Fragments of real PromQL, so random texts often get deep into the grammar. */
const TOKENS = [
  'DCGM_FI_DEV_GPU_UTIL',
  'x',
  '{',
  '}',
  '(',
  ')',
  '[',
  ']',
  '5m',
  ':',
  '1m',
  ',',
  '"a"',
  "'b'",
  '=',
  '!=',
  '=~',
  '!~',
  'gpu',
  '__name__',
  'offset',
  '@',
  'start()',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'bool',
  'and',
  'or',
  'unless',
  '+',
  '-',
  '*',
  '/',
  '%',
  '^',
  '==',
  '>',
  '<=',
  'sum',
  'rate',
  'holt_winters',
  'label_replace',
  'topk',
  'quantile',
  '1',
  '0.5',
  '1e3',
  'Inf',
  'NaN',
  '0x1f',
  ' ',
  '\n',
  '#',
];

function outcome(parse: () => unknown): 'ok' | 'bad_data' {
  try {
    parse();
    return 'ok';
  } catch (error) {
    expect(error).toBeInstanceOf(PromQLError);
    expect((error as PromQLError).errorType).toBe('bad_data');
    return 'bad_data';
  }
}

describe('PromQL parser on outside text (property)', () => {
  it('any string: a tree or bad_data, for queries and match[] selectors', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join('')),
      fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join(' ')),
    );
    fc.assert(
      fc.property(text, (q) => {
        outcome(() => parsePromQL(q));
        outcome(() => parseSeriesSelector(q));
      }),
      { numRuns: 2000 },
    );
  });

  it('deep nesting and long input: bad_data or a tree, promptly', () => {
    const started = performance.now();
    for (const q of ['('.repeat(5000) + 'x' + ')'.repeat(5000), 'x+'.repeat(20000) + 'x', '{'.repeat(10000)])
      expect(['ok', 'bad_data']).toContain(outcome(() => parsePromQL(q)));
    expect(performance.now() - started).toBeLessThan(30_000);
  });
});
