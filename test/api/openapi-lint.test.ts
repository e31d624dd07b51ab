/**
 * Redocly's linter (the library behind `npx @redocly/cli lint`, recommended ruleset) on the running
 * server's /openapi.json: no error, with authentication on (every operation declares the bearer
 * scheme and its scope) and off. Warnings are printed, not failed on.
 */
import { createConfig, lintFromString } from '@redocly/openapi-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.js';
import { startEmbedded, type EmbeddedRuntime } from '../../src/runtime/embedded.js';
import { createLogger } from '../../src/util/logger.js';

const runtimes: Record<'on' | 'off', EmbeddedRuntime | undefined> = { on: undefined, off: undefined };

beforeAll(async () => {
  for (const auth of ['on', 'off'] as const) {
    const config = loadConfig(
      {},
      { MEMORY: true, HOST: '127.0.0.1', PORT: 0, AUTH: auth === 'on' ? 'token' : 'none' },
    );
    runtimes[auth] = await startEmbedded({ config, logger: createLogger('silent') });
  }
}, 120_000);

afterAll(async () => {
  await runtimes.on?.close();
  await runtimes.off?.close();
});

async function problems(auth: 'on' | 'off') {
  const source = await (await fetch(`${runtimes[auth]!.address}/openapi.json`)).text();
  const config = await createConfig({ extends: ['recommended'] });
  return lintFromString({ source, absoluteRef: '/openapi.json', config });
}

describe('Redocly lint of /openapi.json', () => {
  for (const auth of ['on', 'off'] as const) {
    it(`finds no error with authentication ${auth}`, async () => {
      const found = await problems(auth);
      const errors = found.filter((p) => p.severity === 'error');
      const warnings = found.filter((p) => p.severity === 'warn');
      console.log(
        `redocly lint, auth ${auth}: ${errors.length} errors, ${warnings.length} warnings` +
          (warnings.length ? ` (${[...new Set(warnings.map((w) => w.ruleId))].join(', ')})` : ''),
      );
      expect(errors.map((e) => `${e.ruleId}: ${e.message} at ${e.location[0]?.pointer ?? '?'}`)).toEqual([]);
      // The document is the full API, not an empty one that trivially passes.
      const doc = JSON.parse(await (await fetch(`${runtimes[auth]!.address}/openapi.json`)).text()) as {
        paths: Record<string, unknown>;
        components?: { securitySchemes?: Record<string, unknown> };
      };
      expect(Object.keys(doc.paths).length).toBeGreaterThan(15);
      if (auth === 'on') expect(doc.components?.securitySchemes).toHaveProperty('bearerAuth');
    });
  }
});
