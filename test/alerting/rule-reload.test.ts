/**
 * Rule files in a running `start`: a file matched by ALERT_RULES_FILES' glob is loaded; a change
 * that breaks it is refused with file, line and reason (logged, and a warning on /api/v1/rules) and
 * the rules in force stay and keep evaluating; fixing it (or adding a file) installs the new rules,
 * found by the file watch without being asked. A bad file at start-up stops start-up.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { NexusError } from '../../src/errors.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';
import { until } from '../support/until.js';

const dir = mkdtempSync(join(tmpdir(), 'nexus-rule-reload-'));
let runtime: EmbeddedRuntime | undefined;
afterAll(async () => {
  await runtime?.close();
  rmSync(dir, { recursive: true, force: true });
});

const ruleFile = (name: string, expr: string): string =>
  `groups:\n  - name: ops\n    rules:\n      - alert: ${name}\n        expr: ${expr}\n        for: 1m\n`;

const config = (files: string) =>
  loadConfig(
    {},
    { MEMORY: 'true', LOG_LEVEL: 'silent', ALERT_RULES_FILES: files, ALERT_BUILTIN_RULES: 'false' },
  );

interface RulesAnswer {
  status: string;
  warnings?: string[];
  data: { groups: { name: string; file: string; rules: { name: string; health: string }[] }[] };
}

async function rules(): Promise<RulesAnswer> {
  const response = await runtime!.app.inject({ method: 'GET', url: '/api/v1/rules' });
  return response.json() as RulesAnswer;
}

const names = (answer: RulesAnswer): string[] =>
  answer.data.groups.flatMap((g) => g.rules.map((r) => r.name));

describe('rule file reloads', () => {
  it('refuses a broken change with file, line and reason, and keeps the rules in force', async () => {
    const file = join(dir, 'ops.rules.yml');
    writeFileSync(file, ruleFile('HotGPU', 'DCGM_FI_DEV_GPU_TEMP > 85'));
    runtime = await startEmbedded({
      config: config(join(dir, '*.rules.yml')),
      logger: createLogger('silent'),
      listen: false,
    });
    await runtime.alerting.evaluator.evaluateAt();
    expect(names(await rules())).toEqual(['HotGPU']);

    // Break it: a PromQL error on line 5.
    writeFileSync(file, ruleFile('HotGPU2', 'rate(DCGM_FI_DEV_GPU_TEMP[5m]'));
    await runtime.alerting.rules.check();
    expect(runtime.alerting.evaluator.ruleGroups.flatMap((g) => g.rules.map((r) => r.name))).toEqual([
      'HotGPU',
    ]);
    await runtime.alerting.evaluator.evaluateAt();
    const refused = await rules();
    expect(names(refused)).toEqual(['HotGPU']);
    expect(refused.data.groups[0]!.rules[0]!.health).toBe('ok');
    expect(refused.warnings).toHaveLength(1);
    expect(refused.warnings![0]).toMatch(
      new RegExp(`rule reload refused at .*: ${file.replace(/[.]/g, '\\.')}:5:\\d+: expr: parse error`),
    );

    // Fix it, and add a second file: the watch finds both without being asked.
    writeFileSync(file, ruleFile('HotGPU3', 'DCGM_FI_DEV_GPU_TEMP > 90'));
    writeFileSync(
      join(dir, 'more.rules.yml'),
      ruleFile('ColdGPU', 'DCGM_FI_DEV_GPU_TEMP < 5').replace('ops', 'more'),
    );
    await until('the watch reloading the fixed files', 15_000, async () => {
      const groups = runtime!.alerting.evaluator.ruleGroups;
      return (
        groups
          .flatMap((g) => g.rules.map((r) => r.name))
          .sort()
          .join() === 'ColdGPU,HotGPU3'
      );
    });
    await runtime.alerting.evaluator.evaluateAt();
    const fixed = await rules();
    expect(names(fixed).sort()).toEqual(['ColdGPU', 'HotGPU3']);
    expect(fixed.warnings).toBeUndefined();
  }, 60_000);

  it('a bad file at start-up stops start-up, naming file and line', async () => {
    const bad = join(dir, 'bad.yml');
    writeFileSync(
      bad,
      'groups:\n  - name: x\n    rules:\n      - alert: A\n        expr: up\n        for: soon\n',
    );
    const error = await startEmbedded({
      config: config(bad),
      logger: createLogger('silent'),
      listen: false,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NexusError);
    expect((error as NexusError).code).toBe('CONFIG_INVALID');
    expect((error as NexusError).details).toMatchObject({
      file: bad,
      line: 6,
      reason: 'for: not a valid duration string: "soon"',
    });
    expect((error as Error).message).toBe(`rule file ${bad}:6:14: for: not a valid duration string: "soon"`);
  });
});
