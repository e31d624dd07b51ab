/**
 * Rule files are operator input: whatever text `parseRuleFile` gets, it returns rule groups or
 * throws NexusError CONFIG_INVALID with the file, a line and column inside the text (1-based) and a
 * reason, never another exception. Random texts are built from fragments of real rule files (keys,
 * indentation, PromQL, templates, YAML oddities) so they reach deep into the parser, plus any string.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseRuleFile } from '../../src/alerting/rules-file.js';
import { NexusError } from '../../src/errors.js';

const LINES = [
  'groups:',
  '  - name: gpu',
  '  - name: ""',
  '    interval: 30s',
  '    interval: -1m',
  '    limit: 5',
  '    rules:',
  '      - alert: GPUHot',
  '      - alert: ""',
  '      - record: job:x:sum',
  '        expr: DCGM_FI_DEV_GPU_TEMP > 85',
  '        expr: sum by (Hostname) (rate(x[5m]))',
  '        expr: up ==',
  "        expr: '{'",
  '        for: 2m',
  '        for: banana',
  '        keep_firing_for: 5m',
  '        labels:',
  '          severity: warning',
  '          __name__: x',
  '        annotations:',
  "          summary: 'GPU {{ $labels.gpu }} at {{ $value }}'",
  "          summary: '{{ if }}'",
  "          summary: '{{ $labels.gpu'",
  '          description: {{ humanizeDuration $value }}',
  '- a',
  '&anchor x',
  '*anchor',
  '!!binary AAAA',
  '? complex',
  '%YAML 1.2',
  '---',
  '...',
  '\t',
  '',
  'groups: [',
  'groups: 7',
  'groups: null',
];

const seen = { accepted: 0, refused: 0 };

function check(text: string): void {
  const lines = text.split('\n').length;
  try {
    const groups = parseRuleFile(text, 'fuzz.yml');
    seen.accepted += 1;
    for (const g of groups) {
      expect(g.file).toBe('fuzz.yml');
      expect(g.name.length).toBeGreaterThan(0);
    }
  } catch (error) {
    seen.refused += 1;
    expect(error, String(error)).toBeInstanceOf(NexusError);
    const e = error as NexusError;
    expect(e.code).toBe('CONFIG_INVALID');
    const d = e.details as { file: string; line: number; column: number; reason: string };
    expect(d.file).toBe('fuzz.yml');
    expect(d.line).toBeGreaterThanOrEqual(1);
    expect(d.line).toBeLessThanOrEqual(lines + 1);
    expect(d.column).toBeGreaterThanOrEqual(1);
    expect(d.reason.length).toBeGreaterThan(0);
    expect(e.message).toContain(`fuzz.yml:${d.line}:${d.column}`);
  }
}

describe('parseRuleFile on any text', () => {
  it('returns groups or refuses with file, line, column and reason (rule-file fragments)', () => {
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...LINES), { maxLength: 25 }), (lines) => check(lines.join('\n'))),
      { numRuns: 1500 },
    );
    // The fragments reach both outcomes (a generator that only ever made garbage would test little).
    expect(seen.accepted).toBeGreaterThan(0);
    expect(seen.refused).toBeGreaterThan(0);
  });

  it('returns groups or refuses the same way (any string)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), (text) => check(text)),
      { numRuns: 1500 },
    );
  });
});
