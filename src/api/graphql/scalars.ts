/**
 * The DateTime scalar: milliseconds since the epoch inside, RFC 3339 (UTC, millisecond precision)
 * outside. Inputs are parsed strictly (an offset is required); a bad input is a GraphQL error naming
 * the value, never a silent NaN.
 */
import type { ValueNode } from 'graphql';
import { GraphQLError, GraphQLScalarType, Kind } from './graphql.js';
import { parseRfc3339 } from '../params.js';

function toMs(text: unknown): number {
  if (typeof text !== 'string') throw new GraphQLError('DateTime must be an RFC 3339 string');
  const parsed = parseRfc3339(text);
  if (!parsed) {
    throw new GraphQLError(
      `'${text.slice(0, 64)}' is not an RFC 3339 date-time such as 2025-07-18T20:42:34Z`,
    );
  }
  // Sub-millisecond digits are dropped; ranges stay inclusive at millisecond precision.
  return parsed.ms;
}

/** DateTime: an RFC 3339 instant. */
export const DateTimeScalar = new GraphQLScalarType<number, string>({
  name: 'DateTime',
  description:
    'An instant as an RFC 3339 string in UTC with millisecond precision, e.g. `2025-07-18T20:42:34.000Z`.',
  serialize(value: unknown): string {
    const ms = typeof value === 'number' ? value : value instanceof Date ? value.getTime() : Number.NaN;
    const date = new Date(ms);
    if (Number.isNaN(date.getTime())) throw new GraphQLError('DateTime cannot represent an invalid time');
    return date.toISOString();
  },
  parseValue: toMs,
  parseLiteral(node: ValueNode): number {
    if (node.kind !== Kind.STRING) throw new GraphQLError('DateTime must be a string', { nodes: node });
    return toMs(node.value);
  },
});
