// Property-based tests of the strict labels_raw parser: written label sets round-trip; arbitrary text
// never throws; a label set cut inside a quoted value is refused rather than partly kept.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseLabels } from '../../src/ingest/labels.js';

const RUNS = { numRuns: 400, interruptAfterTimeLimit: 4000 };

const keyChar = fc.constantFrom('a', 'Z', '_', '0', '9', '.', '-', ':', 'é', '/');
const key = fc.string({ unit: keyChar, minLength: 1, maxLength: 10 });
const valueChar = fc.constantFrom('a', ' ', ',', '=', '"', '\\', '\n', '{', '}', 'é', '🎉', 'n');
const value = fc.string({ unit: valueChar, maxLength: 12 });
const labelSet = fc.dictionary(key, value, { maxKeys: 6 });

/** Write labels in the Prometheus form DCGM uses: key="value" with \", \\ and \n escapes. */
function write(labels: Record<string, string>, braces: boolean, spaces: boolean): string {
  const sep = spaces ? ', ' : ',';
  const body = Object.entries(labels)
    .map(([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')}"`)
    .join(sep);
  return braces ? `{${body}}` : body;
}

describe('parseLabels properties', () => {
  it('round-trips every written label set', () => {
    fc.assert(
      fc.property(labelSet, fc.boolean(), fc.boolean(), (labels, braces, spaces) => {
        const r = parseLabels(write(labels, braces, spaces));
        expect(r).toEqual({ ok: true, labels });
      }),
      RUNS,
    );
  });

  it('never throws on arbitrary text; a refusal points inside the text', () => {
    const anyChar = fc.constantFrom('a', '=', ',', '"', '\\', ' ', '{', '}', '\n', 'é');
    fc.assert(
      fc.property(
        fc.oneof(fc.string({ unit: anyChar, maxLength: 30 }), fc.string({ maxLength: 30 })),
        (raw) => {
          const r = parseLabels(raw);
          if (r.ok) {
            for (const [k, v] of Object.entries(r.labels)) {
              expect(k.length).toBeGreaterThan(0);
              expect(typeof v).toBe('string');
            }
          } else {
            expect(r.offset).toBeGreaterThanOrEqual(0);
            expect(r.offset).toBeLessThanOrEqual(raw.length);
            expect(r.detail.length).toBeGreaterThan(0);
          }
        },
      ),
      { numRuns: 1000, interruptAfterTimeLimit: 4000 },
    );
  });

  it('refuses a label set cut inside a quoted value or before its "="', () => {
    fc.assert(
      fc.property(labelSet, fc.nat({ max: 1_000_000 }), (labels, at) => {
        const raw = write(labels, false, false);
        fc.pre(raw.length > 0);
        const cut = raw.slice(0, at % raw.length);
        // Where does the cut land? Inside quotes, or inside a key (no '=' yet)?
        let inQuotes = false;
        let afterEq = false;
        for (let i = 0; i < cut.length; i++) {
          const c = cut[i];
          if (inQuotes) {
            if (c === '\\') i++;
            else if (c === '"') inQuotes = false;
          } else if (c === '"') inQuotes = true;
          else if (c === '=') afterEq = true;
          else if (c === ',') afterEq = false;
        }
        const r = parseLabels(cut);
        if (inQuotes || (cut !== '' && !afterEq && !cut.endsWith(','))) expect(r.ok, cut).toBe(false);
        else if (r.ok) {
          // A cut between labels keeps whole labels only, with their full values.
          for (const [k, v] of Object.entries(r.labels)) expect(labels[k]).toBe(v);
        }
      }),
      RUNS,
    );
  });
});
