/**
 * A bounded log of items in revision order that drops its oldest whole revisions: the storage of
 * the event hub's replay ring and of the embedded coordination store's watch history. A dropped
 * item is released at once (its slot cleared), and the array is shortened once the dead prefix is
 * half of it, so the log never holds more live references than its bound.
 */

/** Items with non-decreasing revisions, oldest first. */
export class RevisionLog<T extends { revision: number }> {
  private items: (T | undefined)[] = [];
  private start = 0;

  /** Number of items held. */
  get size(): number {
    return this.items.length - this.start;
  }

  /** The newest item, if any. */
  get last(): T | undefined {
    return this.size > 0 ? this.items[this.items.length - 1] : undefined;
  }

  /** The item `i` places after the oldest held (0 is the oldest). */
  at(i: number): T {
    return this.items[this.start + i]!;
  }

  /** Append an item (its revision must not be below the newest's). */
  push(item: T): void {
    this.items.push(item);
  }

  /**
   * Drop the oldest whole revisions until at most `limit` items remain (a revision's items all go,
   * or none, so a replay never starts inside one). Returns the newest revision dropped, or
   * undefined when nothing was.
   */
  trimTo(limit: number): number | undefined {
    if (this.size <= limit) return undefined;
    let dropTo = this.items.length - limit;
    const boundary = this.items[dropTo - 1]!.revision;
    while (dropTo < this.items.length && this.items[dropTo]!.revision === boundary) dropTo++;
    this.dropTo(dropTo);
    return boundary;
  }

  /** Drop every item whose revision is below `revision`. */
  dropBelow(revision: number): void {
    this.dropTo(this.start + this.firstIndex((item) => item.revision >= revision));
  }

  /**
   * Index (0 = oldest held) of the first item for which `after` is true, or `size` if none; `after`
   * must be false for a prefix of the log and true for the rest (binary search).
   */
  firstIndex(after: (item: T) => boolean): number {
    let lo = this.start;
    let hi = this.items.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (!after(this.items[mid]!)) lo = mid + 1;
      else hi = mid;
    }
    return lo - this.start;
  }

  /** The items from index `from` (0 = oldest held) on, as a new array. */
  sliceFrom(from: number): T[] {
    return this.items.slice(this.start + from) as T[];
  }

  /** Forget every item. */
  clear(): void {
    this.items = [];
    this.start = 0;
  }

  private dropTo(index: number): void {
    if (index <= this.start) return;
    this.items.fill(undefined, this.start, index);
    this.start = index;
    // Shorten the array once the dead prefix is half of it: amortised O(1) per item.
    if (this.start > 1024 && this.start * 2 >= this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
  }
}
