/**
 * Admission of producers held by queue backpressure, in arrival order: a producer that finds the
 * queue full joins the line, and each one waits for the one before it to get in. Shared by the queue
 * adapters whose backends cannot order waiting producers themselves (etcd, Redis).
 */
export class ProducerLine {
  private held = 0;
  private tail: Promise<void> = Promise.resolve();

  /** Producers waiting in the line now. */
  get waiting(): number {
    return this.held;
  }

  /** Run `admit` after every producer that joined earlier has been admitted (or failed). */
  async join<T>(admit: () => Promise<T>): Promise<T> {
    this.held += 1;
    const turn = this.tail.then(admit);
    this.tail = turn.then(
      () => undefined,
      () => undefined,
    );
    try {
      return await turn;
    } finally {
      this.held -= 1;
    }
  }
}
