/**
 * Rule files: the parser reads Prometheus' rule-file format and refuses broken files with file, line
 * and reason; Prometheus' own `promtool check rules` (Debian package `prometheus`) accepts the
 * built-in file and refuses every one of the same broken files.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { parseRuleFile } from '../../src/alerting/rules-file.js';
import { BUILTIN_RULES_FILE, loadRules, mergeRules } from '../../src/alerting/rules-loader.js';
import { NexusError } from '../../src/errors.js';
import { readFileSync } from 'node:fs';

const PROMTOOL = '/usr/bin/promtool';
const dir = mkdtempSync(join(tmpdir(), 'nexus-rules-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function promtool(file: string): Promise<{ ok: boolean; output: string }> {
  if (!existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} not found: install the Debian package prometheus`);
  try {
    const { stdout, stderr } = await promisify(execFile)(PROMTOOL, ['check', 'rules', file]);
    return { ok: true, output: stdout + stderr };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

function refusal(text: string, file = 'broken.yml'): Record<string, unknown> {
  try {
    parseRuleFile(text, file);
  } catch (error) {
    expect(error).toBeInstanceOf(NexusError);
    expect((error as NexusError).code).toBe('CONFIG_INVALID');
    return (error as NexusError).details;
  }
  throw new Error('not refused');
}

const head = 'groups:\n  - name: g\n    rules:\n';

/** Broken files: text, expected line, a piece of the reason. */
const BROKEN: { name: string; text: string; line: number; reason: RegExp }[] = [
  {
    name: 'PromQL syntax error',
    text: `${head}      - alert: A\n        expr: up == 1\n      - alert: B\n        expr: rate(DCGM_FI_DEV_XID_ERRORS[5m]\n`,
    line: 7,
    reason: /^expr: parse error/,
  },
  {
    name: 'PromQL error on the third line of a block scalar',
    text: `${head}      - alert: A\n        expr: |\n          up\n            or\n            rate(up[5m) > 0\n`,
    line: 8,
    reason: /^expr: parse error/,
  },
  {
    name: 'unknown field',
    text: `${head}      - alert: A\n        expr: up == 0\n        forr: 5m\n`,
    line: 6,
    reason: /field forr not found/,
  },
  {
    name: 'bad duration',
    text: `${head}      - alert: A\n        expr: up == 0\n        for: 5 minutes\n`,
    line: 6,
    reason: /for: not a valid duration string/,
  },
  {
    name: 'alert and record together',
    text: `${head}      - alert: A\n        record: a:b\n        expr: up\n`,
    line: 4,
    reason: /only one of "record" and "alert"/,
  },
  {
    name: 'missing expr',
    text: `${head}      - alert: A\n        labels:\n          severity: page\n`,
    line: 4,
    reason: /field "expr" must be set/,
  },
  {
    name: 'repeated group name',
    text: `${head}      - alert: A\n        expr: up\n  - name: g\n    rules: []\n`,
    line: 6,
    reason: /groupname: "g" is repeated/,
  },
  {
    name: 'bad label name',
    text: `${head}      - alert: A\n        expr: up\n        labels:\n          bad-name: x\n`,
    line: 7,
    reason: /invalid label name/,
  },
  {
    name: 'unclosed template action',
    text: `${head}      - alert: A\n        expr: up\n        annotations:\n          summary: "GPU {{ $labels.gpu "\n`,
    line: 7,
    reason: /annotations.summary: template: unclosed action/,
  },
  {
    name: 'YAML syntax error',
    text: `${head}      - alert: A\n        expr: up\n       labels: {}\n`,
    line: 6,
    reason: /^yaml: /,
  },
  {
    name: 'for on a recording rule',
    text: `${head}      - record: a:b\n        expr: up\n        for: 1m\n`,
    line: 6,
    reason: /invalid field "for" in recording rule/,
  },
];

describe('rule files', () => {
  it('reads groups, alerting and recording rules with their fields', () => {
    const groups = parseRuleFile(
      [
        'groups:',
        '  - name: gpus',
        '    interval: 15s',
        '    limit: 10',
        '    rules:',
        '      - record: gpu:temp:max',
        '        expr: max by (Hostname) (DCGM_FI_DEV_GPU_TEMP)',
        '      - alert: Hot',
        '        expr: DCGM_FI_DEV_GPU_TEMP > 80',
        '        for: 1m30s',
        '        keep_firing_for: 5m',
        '        labels: { severity: page }',
        "        annotations: { summary: 'GPU {{ $labels.gpu }} at {{ $value | humanize }}' }",
        '',
      ].join('\n'),
      'x.yml',
    );
    expect(groups).toEqual([
      {
        name: 'gpus',
        file: 'x.yml',
        intervalMs: 15_000,
        limit: 10,
        rules: [
          {
            kind: 'record',
            name: 'gpu:temp:max',
            expr: 'max by (Hostname) (DCGM_FI_DEV_GPU_TEMP)',
            labels: {},
            line: 6,
          },
          {
            kind: 'alert',
            name: 'Hot',
            expr: 'DCGM_FI_DEV_GPU_TEMP > 80',
            forMs: 90_000,
            keepFiringForMs: 300_000,
            labels: { severity: 'page' },
            annotations: { summary: 'GPU {{ $labels.gpu }} at {{ $value | humanize }}' },
            line: 8,
          },
        ],
      },
    ]);
    expect(parseRuleFile('', 'empty.yml')).toEqual([]);
  });

  it('the built-in file: 12 alerting rules, accepted by promtool', async () => {
    const groups = parseRuleFile(readFileSync(BUILTIN_RULES_FILE, 'utf8'), BUILTIN_RULES_FILE);
    expect(groups.map((g) => [g.name, g.intervalMs])).toEqual([
      ['gpu-health', 30_000],
      ['gpu-presence', 60_000],
    ]);
    expect(groups.flatMap((g) => g.rules.map((r) => r.name))).toEqual([
      'GPUXidError',
      'GPUXidCritical',
      'GPUDoubleBitECCError',
      'GPURowRemapFailure',
      'GPURowsRemapped',
      'GPUThermalThrottling',
      'GPUPowerThrottling',
      'GPUOverheating',
      'GPUPCIeReplays',
      'GPUNVLinkErrors',
      'GPUTelemetryStale',
      'GPUMissing',
    ]);
    const checked = await promtool(BUILTIN_RULES_FILE);
    expect(checked.output).toContain('SUCCESS: 12 rules found');
    expect(checked.ok).toBe(true);
  });

  for (const broken of BROKEN) {
    it(`refuses a file with ${broken.name} (file, line, reason), as promtool does`, async () => {
      const file = join(dir, `${broken.name.replace(/\W+/g, '-')}.yml`);
      writeFileSync(file, broken.text);
      const details = refusal(broken.text, file);
      expect(details).toMatchObject({ file, line: broken.line });
      expect(details.reason).toMatch(broken.reason);
      const checked = await promtool(file);
      expect(checked.ok, checked.output).toBe(false);
      expect(checked.output).toContain('FAILED');
    });
  }

  it('a user rule replaces the built-in rule of the same name', async () => {
    const file = join(dir, 'override.yml');
    writeFileSync(
      file,
      `groups:\n  - name: mine\n    rules:\n      - alert: GPUOverheating\n        expr: DCGM_FI_DEV_GPU_TEMP > 70\n`,
    );
    const loaded = await loadRules([join(dir, 'overr*.yml')], true);
    const all = loaded.groups.flatMap((g) => g.rules.map((r) => `${g.name}/${r.name}`));
    expect(all.filter((n) => n.endsWith('/GPUOverheating'))).toEqual(['mine/GPUOverheating']);
    expect(all).toHaveLength(12);
    expect(loaded.groups.map((g) => g.name)).toEqual(['gpu-health', 'gpu-presence', 'mine']);
    expect(mergeRules(loaded.groups, []).map((g) => g.name)).toEqual(['gpu-health', 'gpu-presence', 'mine']);
    expect((await loadRules([file], false)).groups.map((g) => g.name)).toEqual(['mine']);
  });
});
