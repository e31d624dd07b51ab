import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { batchSizeFor, CONFIG_VARIABLES, loadConfig } from '../../src/config/config.js';
import { parseDuration } from '../../src/config/duration.js';
import { NexusError } from '../../src/errors.js';

describe('configuration', () => {
  it('applies defaults, then env, then flags', () => {
    expect(loadConfig({}).BATCH_SIZE).toBeUndefined();
    expect(batchSizeFor(loadConfig({}), 'embedded')).toBe(5000);
    expect(batchSizeFor(loadConfig({}), 'shared')).toBe(2000);
    expect(batchSizeFor(loadConfig({ BATCH_SIZE: '250' }), 'embedded')).toBe(250);
    expect(loadConfig({ BATCH_SIZE: '250' }).BATCH_SIZE).toBe(250);
    expect(loadConfig({ BATCH_SIZE: '250' }, { BATCH_SIZE: '300' }).BATCH_SIZE).toBe(300);
    expect(loadConfig({}).CLAIM_TTL).toBe(30_000);
    expect(loadConfig({ CLAIM_TTL: '10s' }).CLAIM_TTL).toBe(10_000);
    expect(() => loadConfig({ CLAIM_TTL: '500ms' })).toThrow(/CLAIM_TTL/);
    expect(loadConfig({}).HIERARCHY_INTERVAL).toBe(0);
    expect(loadConfig({ HIERARCHY_INTERVAL: '1s', CLAIM_TTL: '4s' }).HIERARCHY_INTERVAL).toBe(1000);
    expect(() => loadConfig({ HIERARCHY_INTERVAL: '10s' })).toThrow(
      /HIERARCHY_INTERVAL.*quarter of CLAIM_TTL/,
    );
    expect(() => loadConfig({ CLAIM_TTL: '2d' })).toThrow(/CLAIM_TTL/);
    expect(loadConfig({ POLL_INTERVAL: '2s', ENABLE_CORS: 'false' })).toMatchObject({
      POLL_INTERVAL: 2000,
      ENABLE_CORS: false,
    });
  });

  it('rejects bad values naming every bad variable', () => {
    try {
      loadConfig({ BATCH_SIZE: '0', POLL_INTERVAL: 'soon', PORT: 'http' });
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(NexusError);
      const message = (error as NexusError).message;
      expect((error as NexusError).code).toBe('CONFIG_INVALID');
      for (const name of ['BATCH_SIZE', 'POLL_INTERVAL', 'PORT']) expect(message).toContain(name);
    }
  });

  it('returns a frozen object', () => {
    expect(Object.isFrozen(loadConfig({}))).toBe(true);
  });

  it('documents every variable it reads in docs/configuration.md', () => {
    const doc = readFileSync(new URL('../../docs/configuration.md', import.meta.url), 'utf8');
    for (const name of CONFIG_VARIABLES) expect(doc, name).toContain(`\`${name}\``);
  });

  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('5m')).toBe(300_000);
    expect(parseDuration('250')).toBe(250);
    expect(parseDuration('1 week')).toBeUndefined();
  });
});
