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

/**
 * Handle `--help` (print `usage` and exit 0) and refuse flags not in `known`, before a long run
 * starts: a mistyped flag would otherwise be ignored and the whole bench run with defaults.
 */
export function checkArgs(usage: string, known: readonly string[]): void {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) {
    console.log(usage);
    process.exit(0);
  }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (!known.includes(arg))
      throw new Error(`unknown argument ${JSON.stringify(arg)}; known: ${known.join(', ')}, --help`);
    i += 1; // every known flag takes one value
  }
}
