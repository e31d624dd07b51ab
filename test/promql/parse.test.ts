/**
 * PromQL parsing: lezer tree -> the engine's typed AST, Prometheus 2.42's type checks, what answers
 * bad_data, the string/number/duration literal rules and the RE2 -> JavaScript regex translation.
 */
import { describe, expect, it } from 'vitest';
import { parsePromQL, parseSeriesSelector } from '../../src/promql/engine.js';
import { parseDuration, parseNumber, unquote } from '../../src/promql/parse.js';
import { compileMatcherRegex, translateRE2 } from '../../src/promql/regex.js';
import { PromQLError } from '../../src/promql/types.js';

function badData(query: string): string {
  try {
    parsePromQL(query);
  } catch (err) {
    expect(err).toBeInstanceOf(PromQLError);
    expect((err as PromQLError).errorType).toBe('bad_data');
    return (err as PromQLError).message;
  }
  throw new Error(`expected ${query} to be refused`);
}

describe('AST conversion', () => {
  it('turns selectors, modifiers and matchers into typed nodes', () => {
    expect(parsePromQL('rate(x{a="b",c=~"d"}[5m] offset -1m @ start())')).toEqual({
      kind: 'call',
      func: 'rate',
      args: [
        {
          kind: 'matrixSelector',
          rangeMs: 300_000,
          selector: {
            kind: 'vectorSelector',
            matchers: [
              { name: '__name__', type: '=', value: 'x' },
              { name: 'a', type: '=', value: 'b' },
              { name: 'c', type: '=~', value: 'd' },
            ],
            offsetMs: -60_000,
            at: { kind: 'start' },
          },
        },
      ],
    });
  });

  it('keeps the grammar precedence: -x ^ 2 is -(x ^ 2), 2 ^ 3 ^ 2 is right-associative', () => {
    const e = parsePromQL('-x ^ 2');
    expect(e.kind).toBe('unary');
    expect(e.kind === 'unary' && e.expr.kind === 'binary' && e.expr.op).toBe('^');
    const p = parsePromQL('2 ^ 3 ^ 2');
    expect(p.kind === 'binary' && p.rhs.kind).toBe('binary');
    const s = parsePromQL('1 + 2 * 3');
    expect(s.kind === 'binary' && s.op).toBe('+');
  });

  it('binds offset, @, ranges and subqueries to the nearest operand (the grammar attaches them to the whole binary expression)', () => {
    expect(parsePromQL('a - b offset 1m')).toMatchObject({
      kind: 'binary',
      lhs: { kind: 'vectorSelector', offsetMs: 0 },
      rhs: { kind: 'vectorSelector', offsetMs: 60_000 },
    });
    expect(parsePromQL('a + b @ 5')).toMatchObject({
      lhs: { kind: 'vectorSelector', offsetMs: 0 },
      rhs: { at: { kind: 'time', ms: 5000 } },
    });
    expect(parsePromQL('-a offset 1m')).toMatchObject({ kind: 'unary', expr: { offsetMs: 60_000 } });
    // Without the rebinding this would be a valid subquery over `a / sum(b)`.
    expect(badData('a / sum(b)[5m:]')).toMatch(
      /binary expression must contain only scalar and instant vector types/,
    );
    expect(badData('a - b[5m]')).toMatch(
      /binary expression must contain only scalar and instant vector types/,
    );
  });

  it('reads a signed literal before ^ as unary minus of the power (-2 ^ 2 is -4)', () => {
    expect(parsePromQL('-2 ^ 2')).toEqual({
      kind: 'unary',
      op: '-',
      expr: {
        kind: 'binary',
        op: '^',
        lhs: { kind: 'number', value: 2 },
        rhs: { kind: 'number', value: 2 },
        returnBool: false,
      },
    });
    expect(parsePromQL('1 + -2')).toMatchObject({ rhs: { kind: 'number', value: -2 } });
  });

  it('reads vector matching, bool and grouping modifiers', () => {
    const e = parsePromQL('a > bool on(x) group_left(y) b');
    expect(e).toMatchObject({
      kind: 'binary',
      op: '>',
      returnBool: true,
      matching: { card: 'many-to-one', on: true, labels: ['x'], include: ['y'] },
    });
    expect(parsePromQL('a and b')).toMatchObject({
      matching: { card: 'many-to-many', on: false, labels: [] },
    });
    expect(parsePromQL('sum without (a, b) (x)')).toMatchObject({
      kind: 'aggregate',
      without: true,
      grouping: ['a', 'b'],
    });
    expect(parsePromQL('topk(3, x) by (g)')).toMatchObject({
      op: 'topk',
      param: { kind: 'number', value: 3 },
      grouping: ['g'],
    });
  });

  it('reads subqueries, @ times in seconds and the default subquery step', () => {
    expect(parsePromQL('max_over_time(x[10m:1m] @ 1.5)')).toMatchObject({
      args: [{ kind: 'subquery', rangeMs: 600_000, stepMs: 60_000, at: { kind: 'time', ms: 1500 } }],
    });
    expect(parsePromQL('x[5m:]')).toMatchObject({ kind: 'subquery', stepMs: 0 });
  });
});

describe('literals', () => {
  it('parses numbers as the Prometheus lexer does', () => {
    expect(parseNumber('0x1f')).toBe(31);
    expect(parseNumber('010')).toBe(8);
    expect(parseNumber('1e3')).toBe(1000);
    expect(parseNumber('.5')).toBe(0.5);
    expect(parseNumber('-Inf')).toBe(-Infinity);
    expect(parseNumber('NaN')).toBeNaN();
    expect(() => parseNumber('5m')).toThrow(PromQLError);
  });

  it('parses durations with ordered units (y=365d, w=7d)', () => {
    expect(parseDuration('1h30m')).toBe(5_400_000);
    expect(parseDuration('1y')).toBe(365 * 86_400_000);
    expect(parseDuration('2w1d')).toBe(15 * 86_400_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('1m1h')).toThrow(PromQLError);
    expect(() => parseDuration('1.5m')).toThrow(PromQLError);
  });

  it('unquotes the three Go string forms', () => {
    expect(unquote('"a\\tb\\"c\\u00e9\\x41"')).toBe('a\tb"cé\x41');
    expect(unquote("'it\\'s'")).toBe("it's");
    expect(unquote('`raw\\n`')).toBe('raw\\n');
    expect(() => unquote('"bad \\q"')).toThrow(PromQLError);
  });
});

describe('bad_data', () => {
  it('reports syntax errors with a position', () => {
    expect(badData('sum(rate(x[5m])')).toMatch(/^parse error: .* at position \d+$/);
    expect(badData('foo bar')).toMatch(/parse error/);
    expect(badData('')).toMatch(/no expression/);
  });

  it('type-checks function arguments, aggregations and operators like Prometheus', () => {
    expect(badData('rate(x)')).toBe(
      'parse error: expected type range vector in call to function "rate", got instant vector',
    );
    expect(badData('abs(x, 1)')).toMatch(/expected 1 argument\(s\) in call to "abs", got 2/);
    expect(badData('label_join(x, "a")')).toMatch(/expected at least 3 argument/);
    expect(badData('sum(x[1m])')).toMatch(
      /expected type instant vector in aggregation expression, got range vector/,
    );
    expect(badData('topk("a", x)')).toMatch(/expected type scalar in aggregation parameter, got string/);
    expect(badData('sum(x, y)')).toMatch(/wrong number of arguments/);
    expect(badData('1 > 2')).toMatch(/comparisons between scalars must use BOOL modifier/);
    expect(badData('x + bool y')).toMatch(/bool modifier can only be used on comparison operators/);
    expect(badData('x and 1')).toMatch(/set operator "and" not allowed in binary scalar expression/);
    expect(badData('x and on(a) group_left y')).toMatch(/no grouping allowed for "and" operation/);
    expect(badData('x + on(a) group_left(a) y')).toMatch(/must not occur in ON and GROUP clause at once/);
    expect(badData('x[1m] + 1')).toMatch(
      /binary expression must contain only scalar and instant vector types/,
    );
    expect(badData('-(x[1m])')).toMatch(/unary expression only allowed/);
    expect(badData('rate(x[1m])[5m:1m][5m:1m]')).toMatch(/subquery is only allowed on instant vector/);
  });

  it('refuses selectors that match everything, double names, and misplaced modifiers', () => {
    expect(badData('{a=""}')).toMatch(/at least one non-empty matcher/);
    expect(badData('{a=~".*"}')).toMatch(/at least one non-empty matcher/);
    expect(badData('x{__name__="y"}')).toMatch(/metric name must not be set twice/);
    expect(badData('x offset 1m offset 2m')).toMatch(/offset may not be set multiple times/);
    expect(badData('x @ 1 @ 2')).toMatch(/may not be set multiple times/);
    expect(badData('sum(x) offset 1m')).toMatch(/offset modifier must be preceded/);
    expect(badData('(x)[1m]')).toMatch(/ranges only allowed for vector selectors/);
    expect(badData('x[0s]')).toMatch(/greater than 0/);
    expect(badData('x @ Inf')).toMatch(/timestamp out of bounds/);
  });

  it('refuses what Prometheus 2.42 does not have and what the engine does not support', () => {
    expect(badData('histogram_quantile(0.9, x)')).toBe('function "histogram_quantile" is not supported');
    expect(badData('histogram_fraction(0, 1, x)')).toBe('function "histogram_fraction" is not supported');
    expect(badData('predict_linear(x, 60)')).toMatch(/expected type range vector/);
    // holt_winters is 2.42's name; its 3.x name is refused, and positions refer to the query as typed.
    expect(badData('double_exponential_smoothing(x[5m], 0.5, 0.5)')).toBe(
      'function "double_exponential_smoothing" is not supported',
    );
    expect(badData('holt_winters(x[5m], 0.5, 0.5) +')).toMatch(/position (29|30|31)$/);
    expect(badData('sort_by_label(x, "a")')).toBe('function "sort_by_label" is not supported');
    expect(badData('limitk(2, x)')).toMatch(/not supported|parse error/);
    expect(badData('x{"a"="b"}')).toMatch(/quoted label names/);
    expect(badData('x[5m+1m]')).toMatch(/duration expressions are not supported/);
  });
});

describe('regular expressions (RE2 -> JavaScript)', () => {
  it('anchors fully and translates flags and named groups', () => {
    expect(compileMatcherRegex('a|b').test('ab')).toBe(false);
    expect(compileMatcherRegex('a|b').test('b')).toBe(true);
    expect(compileMatcherRegex('(?i)gpu').test('GPU')).toBe(true);
    expect(translateRE2('(?P<n>x)').source).toBe('(?<n>x)');
    expect(compileMatcherRegex('[[:digit:]]+').test('123')).toBe(true);
  });

  it('refuses what RE2 rejects (look-around, back-references) with bad_data', () => {
    for (const re of ['(?=a)', '(?!a)', '(?<=a)', '(a)\\1', '(', 'a**', '\\pL']) {
      expect(() => compileMatcherRegex(re), re).toThrow(PromQLError);
    }
  });
});

describe('parseSeriesSelector', () => {
  it('returns the matchers of a plain selector, the name first', () => {
    expect(parseSeriesSelector('up{job!~"a.*"}')).toEqual([
      { name: '__name__', type: '=', value: 'up' },
      { name: 'job', type: '!~', value: 'a.*' },
    ]);
  });

  it('refuses anything that is not a plain vector selector', () => {
    for (const q of ['sum(up)', 'up[5m]', 'up offset 1m', 'up{', '1']) {
      expect(() => parseSeriesSelector(q), q).toThrow(PromQLError);
    }
  });
});
