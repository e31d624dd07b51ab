/**
 * Turns of the event loop, as the event path counts them: a turn ends at the next check phase
 * after the first call in it (one shared immediate per turn, whoever asks). What the event hub
 * hands over within one turn is one delivery (../events/delivery-bound.ts); GraphQL sends let the
 * loop turn when their turn has run too long (../api/graphql/ws.ts).
 */

let turn = 0;
let ending = false;
/** When the current turn's first {@link turnRunningMs} call came (undefined: none yet). */
let timedSince: number | undefined;
const endTurn = (): void => {
  turn += 1;
  ending = false;
  timedSince = undefined;
};

/** A number for the current turn of the event loop (one more per turn that asked). */
export function currentTurn(): number {
  if (!ending) {
    ending = true;
    setImmediate(endTurn);
  }
  return turn;
}

/** How long since the first call of this function in the current turn of the event loop, ms. */
export function turnRunningMs(): number {
  currentTurn();
  const now = performance.now();
  timedSince ??= now;
  return now - timedSince;
}
