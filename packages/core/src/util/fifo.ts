/**
 * A first-in-first-out queue with amortised O(1) `push`, `shift` and `take`. `Array#shift` copies
 * the whole array once it outgrows V8's small-array fast path (about 16k items), which would make
 * draining a large buffer quadratic.
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  /** Removes and returns the oldest item. The queue must not be empty. */
  shift(): T {
    const item = this.#items[this.#head] as T;
    this.#items[this.#head] = undefined; // no reference kept for the garbage collector to trip on
    this.#head += 1;
    this.#compact();
    return item;
  }

  /** Removes and returns up to `count` of the oldest items, oldest first. */
  take(count: number): T[] {
    const end = Math.min(this.#head + count, this.#items.length);
    const taken = this.#items.slice(this.#head, end) as T[];
    this.#items.fill(undefined, this.#head, end);
    this.#head = end;
    this.#compact();
    return taken;
  }

  /**
   * Removes and returns the oldest item and up to `count − 1` of the items after it with the same
   * `key`, oldest first; the others keep their order. O(length).
   */
  takeLike(count: number, key: (item: T) => unknown): T[] {
    if (this.length === 0 || count < 1) return [];
    const first = this.#items[this.#head] as T;
    const k = key(first);
    // Usually the oldest items share the key (a queue without groups: all of them): take them as a
    // run, O(count), without touching the rest.
    let run = 1;
    while (
      run < count &&
      this.#head + run < this.#items.length &&
      key(this.#items[this.#head + run] as T) === k
    )
      run++;
    if (run === count || this.#head + run === this.#items.length) return this.take(run);
    const taken: T[] = [first];
    const kept: T[] = [];
    for (let i = this.#head + 1; i < this.#items.length; i++) {
      const item = this.#items[i] as T;
      if (taken.length < count && key(item) === k) taken.push(item);
      else kept.push(item);
    }
    this.#items = kept;
    this.#head = 0;
    return taken;
  }

  clear(): void {
    this.#items = [];
    this.#head = 0;
  }

  /** Drops the consumed prefix once it is at least half of the array: amortised O(1) per item. */
  #compact(): void {
    if (this.#head === this.#items.length) {
      this.#items = [];
      this.#head = 0;
    } else if (this.#head >= 1024 && this.#head * 2 >= this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
