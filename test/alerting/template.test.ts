/**
 * Alert templates: the Go text/template subset rule labels and annotations use, with Prometheus'
 * humanize functions and Go's number formatting.
 */
import { describe, expect, it } from 'vitest';
import { compileTemplate, expandTemplate, goFloat, goG } from '../../src/alerting/template.js';

const data = {
  labels: { gpu: '3', Hostname: 'dgx-1' },
  value: 1234567.891,
  externalLabels: { cluster: 'c1' },
};

describe('alert templates', () => {
  it('expands labels, value, pipelines and functions', () => {
    const cases: [string, string][] = [
      ['GPU {{ $labels.gpu }} on {{ $labels.Hostname }}', 'GPU 3 on dgx-1'],
      ['{{ .Labels.gpu }}/{{ $externalLabels.cluster }}', '3/c1'],
      ['{{ $value }}', '1.234567891e+06'],
      ['{{ humanize $value }}', '1.235M'],
      ['{{ $value | humanize }}', '1.235M'],
      ['{{ humanize1024 1048576 }}', '1Mi'],
      ['{{ humanizePercentage 0.256 }}', '25.6%'],
      ['{{ humanizeDuration 3725 }}', '1h 2m 5s'],
      ['{{ humanizeDuration 0.25 }}', '250ms'],
      ['{{ printf "%.1f" $value }}', '1234567.9'],
      ['{{ $labels.missing }}', '<no value>'],
      ['a {{- " b " -}} c', 'a b c'],
      ['{{ "x" | toUpper }}', 'X'],
      ['{{/* comment */}}ok', 'ok'],
    ];
    for (const [template, want] of cases) expect(compileTemplate(template)(data), template).toBe(want);
    expect(expandTemplate('{{ humanize "abc" }}', data)).toMatch(/^<error expanding template: /);
  });

  it('refuses what it does not support when compiling', () => {
    expect(() => compileTemplate('{{ if $value }}x{{ end }}')).toThrow(/function "if" not defined/);
    expect(() => compileTemplate('{{ query "up" }}')).toThrow(/function "query" not defined/);
    expect(() => compileTemplate('{{ $labels.gpu ')).toThrow(/unclosed action/);
    expect(() => compileTemplate('{{ $nope }}')).toThrow(/unsupported operand/);
  });

  it('formats numbers as Go does', () => {
    expect([goG(95), goG(0.000012345), goG(123456), goG(1.5), goG(0)]).toEqual([
      '95',
      '1.234e-05',
      '1.235e+05',
      '1.5',
      '0',
    ]);
    expect([goFloat(95), goFloat(123456), goFloat(1e21), goFloat(NaN), goFloat(-Infinity)]).toEqual([
      '95',
      '123456',
      '1e+21',
      'NaN',
      '-Inf',
    ]);
  });
});
