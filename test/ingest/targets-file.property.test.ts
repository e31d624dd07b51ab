// Properties of the file_sd targets-file parser, which reads an operator's file: any text either
// parses into http(s) targets or is refused with a plain Error naming the fault (never a TypeError
// from walking a malformed value), and a valid file's targets are all kept, once each.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTargetsFile } from '../../src/ingest/targets-file.js';

describe('targets file parser (property)', () => {
  it('any text or JSON value parses or is refused with a readable Error', () => {
    const text = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)),
      fc
        .array(fc.record({ targets: fc.anything({ maxDepth: 2 }), labels: fc.anything({ maxDepth: 2 }) }), {
          maxLength: 3,
        })
        .map((v) => JSON.stringify(v)),
    );
    fc.assert(
      fc.property(text, (t) => {
        // The same text as JSON and as YAML (a .yml file): JSON is YAML too, so both paths are hit.
        for (const format of ['json', 'yaml'] as const) {
          try {
            const targets = parseTargetsFile(t, format);
            for (const target of targets) expect(target.url).toMatch(/^https?:\/\//);
          } catch (error) {
            expect(error).toBeInstanceOf(Error);
            expect(error).not.toBeInstanceOf(TypeError);
            expect((error as Error).message.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: 400 },
    );
  });

  it('host:port targets become http://host:port/metrics, each once', () => {
    const hostPort = fc
      .tuple(fc.stringMatching(/^[a-z][a-z0-9-]{0,10}$/), fc.integer({ min: 1, max: 65535 }))
      .map(([h, p]) => `${h}:${p}`);
    fc.assert(
      fc.property(fc.array(fc.array(hostPort, { maxLength: 4 }), { maxLength: 3 }), (groups) => {
        const targets = parseTargetsFile(JSON.stringify(groups.map((g) => ({ targets: g }))));
        const expected = [...new Set(groups.flat())].map((t) => `http://${t}/metrics`);
        expect(targets.map((t) => t.url).sort()).toEqual(expected.sort());
      }),
      { numRuns: 200 },
    );
  });
});
