/**
 * Bounded, revision-ordered history of recent events: the replay buffer resuming subscribers are
 * served from. It drops the oldest whole revisions when full and keeps a `floor`: every event with
 * revision >= floor that the source delivered is still here, so a resume after `floor - 1` is exact.
 */
import { type Cursor, isAfter, WHOLE_REVISION } from './cursor.js';
import type { TelemetryEvent } from './types.js';

/** Recent events in revision order, at most `capacity` of them. */
export class EventRing {
  private events: TelemetryEvent[] = [];
  private start = 0;
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
    return this.events.length - this.start;
  }

  /** Revision of the newest event held, or `floor - 1` when empty. */
  get head(): number {
    return this.size > 0 ? this.events[this.events.length - 1]!.revision : this.floorRevision - 1;
  }

  /** Append an event (revisions must not decrease), dropping the oldest whole revisions when full. */
  push(event: TelemetryEvent): void {
    if (event.revision < this.floorRevision) return;
    this.events.push(event);
    if (this.size <= this.capacity) return;
    // Drop whole revisions: a txn's events all go, or none, so replay never starts mid-revision.
    let dropTo = this.events.length - this.capacity;
    const boundary = this.events[dropTo - 1]!.revision;
    while (dropTo < this.events.length && this.events[dropTo]!.revision === boundary) dropTo++;
    this.start = dropTo;
    this.floorRevision = boundary + 1;
    if (this.start > 1024 && this.start * 2 >= this.events.length) {
      this.events = this.events.slice(this.start);
      this.start = 0;
    }
  }

  /** Whether every event after `after` can be served from here. */
  covers(after: Cursor): boolean {
    // Inside a revision, the rest of it is needed too; whole revisions are held or dropped.
    const firstNeeded = after.index === WHOLE_REVISION ? after.revision + 1 : after.revision;
    return firstNeeded >= this.floorRevision;
  }

  /** Events after `after`, oldest first (call only when `covers(after)`). */
  since(after: Cursor): TelemetryEvent[] {
    let lo = this.start;
    let hi = this.events.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (!isAfter(this.events[mid]!, after)) lo = mid + 1;
      else hi = mid;
    }
    return this.events.slice(lo);
  }

  /** Forget everything; the history is complete again from `floor`. */
  reset(floor: number): void {
    this.events = [];
    this.start = 0;
    this.floorRevision = floor;
  }
}
