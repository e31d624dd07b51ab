/**
 * sharedSubscribe: subscriptions of one operation share each event's execution (a resolver
 * counts its calls), different variables or documents do not, and each subscriber still sees
 * every event, in order, and can stop its own stream.
 */
import { buildSchema, parse } from 'graphql/index.js';
import { describe, expect, it } from 'vitest';
import { sharedSubscribe } from '../../src/api/graphql/shared-subscribe.js';
import type { ExecutionResult } from '../../src/api/graphql/graphql.js';

const schema = buildSchema(`
  type Tick { n: Int!, label(prefix: String!): String! }
  type Query { ok: Boolean }
  type Subscription { ticks: Tick! }
`);

/** A source that hands the same payload objects to every subscriber, as the event hub does. */
function setup(events: { n: number }[]) {
  let labelCalls = 0;
  const payloads = events.map((e) => ({ ticks: e }));
  const rootValue = {
    ticks: async function* () {
      yield* payloads;
    },
  };
  // `label` counts its executions.
  const tick = schema.getType('Tick') as unknown as {
    getFields(): Record<string, { resolve?: (src: { n: number }, args: { prefix: string }) => string }>;
  };
  tick.getFields().label!.resolve = (src, args) => {
    labelCalls += 1;
    return `${args.prefix}${src.n}`;
  };
  return { rootValue, calls: () => labelCalls };
}

async function collect(iterator: AsyncGenerator<ExecutionResult, void, void> | ExecutionResult) {
  if (!(Symbol.asyncIterator in iterator)) throw new Error(JSON.stringify(iterator));
  const out: unknown[] = [];
  for await (const result of iterator) out.push(result.data);
  return out;
}

describe('sharedSubscribe', () => {
  it('executes an operation once per event for all its subscribers', async () => {
    const events = [{ n: 1 }, { n: 2 }, { n: 3 }];
    const { rootValue, calls } = setup(events);
    const document = parse('subscription ($p: String!) { ticks { n label(prefix: $p) } }');
    const run = (p: string) =>
      sharedSubscribe({
        schema,
        document: parse(document.loc!.source.body),
        rootValue,
        variableValues: { p },
      });
    const [a, b, c] = await Promise.all([
      collect(await run('x')),
      collect(await run('x')),
      collect(await run('y')),
    ]);
    expect(a).toEqual([
      { ticks: { n: 1, label: 'x1' } },
      { ticks: { n: 2, label: 'x2' } },
      { ticks: { n: 3, label: 'x3' } },
    ]);
    expect(b).toEqual(a);
    expect(c!.map((d) => (d as { ticks: { label: string } }).ticks.label)).toEqual(['y1', 'y2', 'y3']);
    // Two operations (x and y) x three events; the second 'x' subscriber executed nothing.
    expect(calls()).toBe(6);
  });

  it('returns errors of a bad subscription instead of a stream, and return() ends a stream', async () => {
    const { rootValue } = setup([{ n: 1 }, { n: 2 }]);
    const bad = await sharedSubscribe({ schema, document: parse('subscription { nope }'), rootValue });
    expect(Symbol.asyncIterator in bad).toBe(false);
    expect((bad as ExecutionResult).errors?.[0]?.message).toMatch(/nope/);
    const stream = await sharedSubscribe({
      schema,
      document: parse('subscription { ticks { n } }'),
      rootValue,
    });
    if (!(Symbol.asyncIterator in stream)) throw new Error('expected a stream');
    expect((await stream.next()).value).toEqual({ data: { ticks: { n: 1 } } });
    expect(await stream.return()).toEqual({ done: true, value: undefined });
    expect((await stream.next()).done).toBe(true);
  });
});
