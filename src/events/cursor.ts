/**
 * Stream cursors: a position in the live hierarchy's change history. One coordination write (an etcd
 * txn) may change many records at one revision, so a position is a revision plus, within it, the
 * index of the last change seen. On the wire a cursor is a decimal string: `R` means "all of
 * revision R" (what `Query.cursor`, `subscribed` and snapshots carry), `R.i` means "revision R up to
 * and including its change number i" (what each event carries; i counts from 0 in the order the
 * store reports the revision's changes, which is the same for every watch).
 */
import { NexusError } from '../errors.js';
import type { TelemetryEvent } from './types.js';

/** Index meaning "every change of the revision". */
export const WHOLE_REVISION = Number.POSITIVE_INFINITY;

/** A position in the change history. */
export interface Cursor {
  revision: number;
  /** Last change seen within `revision` (0-based), or {@link WHOLE_REVISION}. */
  index: number;
}

/** The cursor covering every change up to and including `revision`. */
export const wholeRevision = (revision: number): Cursor => ({ revision, index: WHOLE_REVISION });

const CURSOR_PATTERN = /^(\d{1,16})(?:\.(\d{1,6}))?$/;

/**
 * Parse a cursor a client sent back: `R` or `R.i` (a string; a non-negative integer is taken as `R`).
 * Throws NexusError BAD_REQUEST naming `parameter` for anything else.
 */
export function parseCursor(value: unknown, parameter = 'after'): Cursor {
  const text = typeof value === 'number' ? String(value) : value;
  const match = typeof text === 'string' ? CURSOR_PATTERN.exec(text) : null;
  const revision = match ? Number(match[1]) : Number.NaN;
  if (!match || !Number.isSafeInteger(revision)) {
    const shown = typeof value === 'string' ? `'${value.slice(0, 32)}'` : typeof value;
    throw new NexusError(
      'BAD_REQUEST',
      `${parameter} must be a cursor from this server ("1271" or "1271.3"), got ${shown}`,
      { details: { parameter } },
    );
  }
  return { revision, index: match[2] === undefined ? WHOLE_REVISION : Number(match[2]) };
}

/** The wire form of a cursor. */
export function formatCursor(cursor: Cursor): string {
  return cursor.index === WHOLE_REVISION ? String(cursor.revision) : `${cursor.revision}.${cursor.index}`;
}

/** The position of an event: its revision and index (SNAPSHOT and RESYNC cover their whole revision). */
export function cursorOf(event: TelemetryEvent): Cursor {
  return { revision: event.revision, index: event.index ?? WHOLE_REVISION };
}

/** The wire cursor of an event (no object allocated: this runs once per event per subscriber). */
export function eventCursor(event: TelemetryEvent): string {
  return event.index === undefined ? String(event.revision) : `${event.revision}.${event.index}`;
}

/** Whether `event` comes after position `cursor`. */
export function isAfter(event: TelemetryEvent, cursor: Cursor): boolean {
  return (
    event.revision > cursor.revision ||
    (event.revision === cursor.revision && (event.index ?? WHOLE_REVISION) > cursor.index)
  );
}

/** The position just before the first change of `revision`. */
export const beforeRevision = (revision: number): Cursor => wholeRevision(revision - 1);

/**
 * Numbers the changes of each revision in arrival order, for one watch that starts at a revision
 * boundary (every watch does: it starts at a whole revision).
 */
export class RevisionIndexer {
  private revision = -1;
  private count = 0;

  /** The index of the next change, which belongs to `revision`. */
  next(revision: number): number {
    if (revision !== this.revision) {
      this.revision = revision;
      this.count = 0;
    }
    return this.count++;
  }
}
