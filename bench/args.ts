/** Command-line flags of the bench scripts: positive integers, alone or comma-separated. */

/** The positive integer after `name` on the command line, or `fallback` when the flag is absent. */
export function intArg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  if (i === -1) return fallback;
  const n = Number(process.argv[i + 1]);
  if (!Number.isInteger(n) || n < 1)
    throw new Error(`${name} needs a positive integer, got ${process.argv[i + 1]}`);
  return n;
}

/** The comma-separated positive integers after `name`, or undefined when the flag is absent. */
export function intListArg(name: string): number[] | undefined {
  const i = process.argv.indexOf(name);
  if (i === -1) return undefined;
  const values = (process.argv[i + 1] ?? '').split(',').map(Number);
  if (values.length === 0 || values.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error(`${name} needs comma-separated positive integers, got ${process.argv[i + 1]}`);
  return values;
}
