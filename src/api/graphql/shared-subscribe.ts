/**
 * GraphQL subscriptions that share execution. graphql-js runs a subscription's selection once per
 * event per subscriber; dashboards subscribe with the same document, so 100 of them would run the
 * same execution 100 times for every event. Here each event's result is kept per operation (its
 * printed document, operation name and variables) in a WeakMap keyed by the event object the hub
 * hands to every subscriber, and reused by every subscription of the same operation. That is
 * sound because a subscription's result depends only on the event and the operation: resolvers
 * under `telemetryUpdates` read no per-connection state.
 */
import type { ExecutionArgs, ExecutionResult } from './graphql.js';
import { createSourceEventStream, execute, print } from './graphql.js';

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Results by event object, then by operation key; entries go when the event is collected. */
const results = new WeakMap<object, Map<string, Result>>();

function operationKey(args: ExecutionArgs): string {
  return JSON.stringify([print(args.document), args.operationName ?? null, args.variableValues ?? null]);
}

function resultFor(args: ExecutionArgs, key: string, payload: unknown): Result {
  // Non-object payloads cannot key a WeakMap; they are executed as graphql-js would.
  if (typeof payload !== 'object' || payload === null) return execute({ ...args, rootValue: payload });
  let byOperation = results.get(payload);
  if (!byOperation) {
    byOperation = new Map();
    results.set(payload, byOperation);
  }
  let result = byOperation.get(key);
  if (result === undefined) {
    result = execute({ ...args, rootValue: payload });
    byOperation.set(key, result);
  }
  return result;
}

/** Drop-in for graphql-js `subscribe`: the same source stream, results shared per event and operation. */
export async function sharedSubscribe(
  args: ExecutionArgs,
): Promise<AsyncGenerator<ExecutionResult, void, void> | ExecutionResult> {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source;
  const key = operationKey(args);
  const iterator = source[Symbol.asyncIterator]();
  const map = async (step: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult, void>> =>
    step.done
      ? { done: true, value: undefined }
      : { done: false, value: await resultFor(args, key, step.value) };
  const mapped: AsyncGenerator<ExecutionResult, void, void> = {
    next: () => iterator.next().then(map),
    return: async () => map((await iterator.return?.()) ?? { done: true, value: undefined }),
    throw: async (error: unknown) => {
      if (!iterator.throw) throw error;
      return map(await iterator.throw(error));
    },
    [Symbol.asyncIterator]() {
      return mapped;
    },
  };
  return mapped;
}
