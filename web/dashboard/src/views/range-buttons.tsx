// The time-range buttons of the GPU and analytics pages: one per named range, the chosen one
// pressed; a click puts `range=<name>` in the URL.
import { setQuery } from '../router';

/** Buttons for `ranges` (name first), with `current` pressed. */
export function RangeButtons({ ranges, current }: { ranges: readonly [string, number][]; current: string }) {
  return (
    <>
      {ranges.map(([name]) => (
        <button
          key={name}
          type="button"
          aria-pressed={name === current}
          onClick={() => setQuery({ range: name })}
        >
          {name}
        </button>
      ))}
    </>
  );
}
