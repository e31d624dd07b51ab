// Small hooks: async loading with abort, and a throttled re-render on fleet changes.
import { useEffect, useReducer, useState } from 'preact/hooks';
import { fleet } from './store';

/** Loading state of an async value. */
export type Loaded<T> =
  { status: 'loading' } | { status: 'ok'; value: T } | { status: 'error'; message: string };

/** Run `load` when `deps` change (aborting the previous run); `reload` runs it again. */
export function useLoad<T>(
  load: (signal: AbortSignal) => Promise<T>,
  deps: unknown[],
): [Loaded<T>, () => void] {
  const [state, setState] = useState<Loaded<T>>({ status: 'loading' });
  const [generation, reload] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    const controller = new AbortController();
    load(controller.signal).then(
      (value) => setState({ status: 'ok', value }),
      (error: unknown) => {
        if (!controller.signal.aborted)
          setState({ status: 'error', message: String((error as Error).message ?? error) });
      },
    );
    return () => controller.abort();
  }, [...deps, generation]);
  return [state, () => reload(0)];
}

/** Re-render at most every `ms` while the fleet changes (structural changes render at the next frame). */
export function useFleetTick(ms: number, structureOnly = false): number {
  const [tick, bump] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const later = () => {
      timer ??= setTimeout(() => {
        timer = undefined;
        bump(0);
      }, ms);
    };
    const offStructure = fleet.onStructure(() => bump(0));
    const offAny = structureOnly ? () => undefined : fleet.onAny(later);
    return () => {
      offStructure();
      offAny();
      clearTimeout(timer);
    };
  }, [ms, structureOnly]);
  return tick;
}
