/**
 * Declared capabilities of the conformance suites (the pattern of hono's shared router cases):
 * every runner states, per port, what its adapter can do, and a case that needs a capability the
 * adapter lacks is still registered, as `it.skip` / `describe.skip`, with the reason in its title,
 * so the vitest report shows it (`↓ ... [skipped: embedded declares no `persistence` (...)]`).
 *
 * A declaration is a record naming every capability of the port: `true` when the adapter has it,
 * or a non-empty string saying why it has not. It is checked when the suite is constructed: an
 * unknown name (a typo), a missing name, or any other value throws, so a capability is never
 * dropped silently. The suite checks in turn that each of its capabilities gates at least one case.
 */
import { describe, it } from 'vitest';

/** One declared capability: `true` (supported) or why the adapter does not support it. */
export type Declared = true | string;

/** The declaration of a port's capabilities: every name, explicitly. */
export type Capabilities<Name extends string> = Readonly<Record<Name, Declared>>;

/** Registers cases that need capabilities, skipping (with the reason) those the adapter lacks. */
export interface CapabilityGate<Name extends string> {
  /** True when the runner declared `name` as supported. */
  has(name: Name): boolean;
  /** `it`, or `it.skip` with the reason appended to the title when a needed capability is missing. */
  it(needs: Name | readonly Name[], title: string, fn: () => Promise<void>, timeoutMs?: number): void;
  /** `describe`, or `describe.skip` (every case inside reported skipped) when a capability is missing. */
  describe(needs: Name | readonly Name[], title: string, fn: () => void): void;
  /** Throw unless every capability of the port gated at least one registered case. */
  assertAllUsed(): void;
}

/**
 * Validate `declared` against the port's `known` names and return the gate for its cases.
 * @param port the port's name, for messages
 * @param adapter the adapter's name as the runner gave it, for messages and skip titles
 * @param known every capability name of the port
 * @param declared what the runner declared (checked at run time too: runners are not type-checked by vitest)
 * @throws Error on an unknown or missing name, or a value other than `true` or a non-empty string
 */
export function declareCapabilities<Name extends string>(
  port: string,
  adapter: string,
  known: readonly Name[],
  declared: Capabilities<Name>,
): CapabilityGate<Name> {
  const where = `${port} conformance (${adapter})`;
  const list = known.map((n) => `\`${n}\``).join(', ');
  if (typeof declared !== 'object' || declared === null || Array.isArray(declared)) {
    throw new Error(
      `${where}: capabilities must be a record naming each of ${list} (true, or a string saying why not)`,
    );
  }
  const names = new Set<string>(known);
  const record = declared as Readonly<Record<string, unknown>>;
  const unknown = Object.keys(record).filter((n) => !names.has(n));
  if (unknown.length > 0) {
    throw new Error(
      `${where}: unknown capability ${unknown.map((n) => `\`${n}\``).join(', ')}; known: ${list}`,
    );
  }
  const missing = known.filter((n) => !Object.hasOwn(record, n));
  if (missing.length > 0) {
    throw new Error(
      `${where}: declare every capability explicitly; missing ${missing.map((n) => `\`${n}\``).join(', ')} ` +
        `(true, or a string saying why the adapter lacks it)`,
    );
  }
  for (const n of known) {
    const value = record[n];
    if (value !== true && !(typeof value === 'string' && value.trim() !== '')) {
      throw new Error(
        `${where}: capability \`${n}\` must be true or a non-empty reason string, got ${JSON.stringify(value)}`,
      );
    }
  }

  const used = new Set<Name>();
  const lacking = (needs: Name | readonly Name[]): string | undefined => {
    const list = (typeof needs === 'string' ? [needs] : needs) as readonly Name[];
    for (const n of list) {
      if (!names.has(n))
        throw new Error(`${port} conformance suite: a case needs unknown capability \`${n}\``);
      used.add(n);
    }
    const absent = list.filter((n) => declared[n] !== true);
    if (absent.length === 0) return undefined;
    const reasons = absent.map((n) => `\`${n}\` (${declared[n] as string})`).join(', ');
    return `[skipped: ${adapter} declares no ${reasons}]`;
  };

  return {
    has: (n) => declared[n] === true,
    it(needs, title, fn, timeoutMs) {
      const skip = lacking(needs);
      if (skip === undefined) it(title, fn, timeoutMs);
      else it.skip(`${title} ${skip}`, fn); // declared lacking: reported as skipped, with the reason
    },
    describe(needs, title, fn) {
      const skip = lacking(needs);
      if (skip === undefined) describe(title, fn);
      else describe.skip(`${title} ${skip}`, fn); // declared lacking: every case inside reported skipped
    },
    assertAllUsed() {
      const unused = known.filter((n) => !used.has(n));
      if (unused.length > 0) {
        throw new Error(
          `${port} conformance suite: no case needs ${unused.map((n) => `\`${n}\``).join(', ')}`,
        );
      }
    },
  };
}
