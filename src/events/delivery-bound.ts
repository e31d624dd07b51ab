/**
 * The bound of a subscriber's event queue, counted in deliveries: a delivery is what arrives in one
 * turn of the event loop (a store revision's changes, a snapshot of the fleet, a catch-up from a
 * cursor, a burst of alerts). A queue may hold `maxQueued` events plus twice the largest delivery
 * since its consumer last caught up (had at most `maxQueued` waiting): a consumer that keeps up is
 * never cut off by the size of the fleet, even while a large delivery drains over several turns and
 * the next ones arrive, and one that stops reading is cut off within about three deliveries.
 */

import { currentTurn } from '../util/loop-turn.js';

/** The queue bound of one subscriber (see the module comment). */
export class DeliveryBound {
  /** The turn of the last event, the events that arrived in it, the most in one turn. */
  private arrivedIn = -1;
  private delivery = 0;
  private largest = 0;

  /** @param maxQueued events a consumer may leave waiting beyond twice its largest delivery */
  constructor(readonly maxQueued: number) {}

  /**
   * Count one arriving event while `queued` others wait (0 for an event handed straight to a
   * waiting consumer); true when it must not be queued: the consumer is too far behind.
   * @param atLeast a delivery size to allow even when none this large has arrived yet (a burst the
   *   source may split over several turns, such as one change per alert held)
   */
  overflows(queued: number, atLeast = 0): boolean {
    const now = currentTurn();
    if (now !== this.arrivedIn) {
      this.arrivedIn = now;
      this.delivery = 0;
    }
    this.delivery += 1;
    // Once the consumer has caught up, earlier deliveries no longer widen its bound.
    if (queued <= this.maxQueued || this.delivery > this.largest) this.largest = this.delivery;
    return queued >= this.maxQueued + 2 * Math.max(this.largest, atLeast);
  }

  /** The largest delivery the bound counts now. */
  get largestDelivery(): number {
    return this.largest;
  }
}
