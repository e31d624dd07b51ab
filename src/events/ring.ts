/**
 * Bounded, revision-ordered history of recent events: the replay buffer resuming subscribers are
 * served from. It drops the oldest whole revisions when full and keeps a `floor`: every event with
 * revision >= floor that the source delivered is still here, so a resume after `floor - 1` is exact.
 */
import { RevisionLog } from '../util/revision-log.js';
import { type Cursor, isAfter, WHOLE_REVISION } from './cursor.js';
import type { TelemetryEvent } from './types.js';

/** Recent events in revision order, at most `capacity` of them. */
export class EventRing {
  private readonly events = new RevisionLog<TelemetryEvent>();
  private floorRevision: number;

  /**
   * @param capacity most events kept (0 keeps none: every resume then needs the store's history)
   * @param floor revision from which the source's events are complete (the watch's start)
   */
  constructor(
    private readonly capacity: number,
    floor: number,
  ) {
    this.floorRevision = floor;
  }

  /** Smallest revision r such that every event with revision >= r is held (or still to come). */
  get floor(): number {
    return this.floorRevision;
  }

  /** Number of events held. */
  get size(): number {
    return this.events.size;
  }

  /** Revision of the newest event held, or `floor - 1` when empty. */
  get head(): number {
    return this.events.last?.revision ?? this.floorRevision - 1;
  }

  /** Append an event (revisions must not decrease), dropping the oldest whole revisions when full. */
  push(event: TelemetryEvent): void {
    if (event.revision < this.floorRevision) return;
    this.events.push(event);
    // Whole revisions go: a txn's events all go, or none, so replay never starts mid-revision.
    const dropped = this.events.trimTo(this.capacity);
    if (dropped !== undefined) this.floorRevision = dropped + 1;
  }

  /** Whether every event after `after` can be served from here. */
  covers(after: Cursor): boolean {
    // Inside a revision, the rest of it is needed too; whole revisions are held or dropped.
    const firstNeeded = after.index === WHOLE_REVISION ? after.revision + 1 : after.revision;
    return firstNeeded >= this.floorRevision;
  }

  /** Events after `after`, oldest first (call only when `covers(after)`). */
  since(after: Cursor): TelemetryEvent[] {
    return this.events.sliceFrom(this.events.firstIndex((event) => isAfter(event, after)));
  }

  /** Forget everything; the history is complete again from `floor`. */
  reset(floor: number): void {
    this.events.clear();
    this.floorRevision = floor;
  }
}
