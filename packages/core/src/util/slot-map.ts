/**
 * Values in an array of reusable slots; what a `Map` would hold per key, the slot's index.
 *
 * Why not a `Map` of the values: V8 stores a `Map` (and a `Set`) in a hash table that it replaces
 * with a new one when its deleted entries pile up, and the old table keeps every entry it had and a
 * pointer to its successor. Once a table has reached the old generation (a full collection moves
 * every live young object there), each table that replaces it is reachable from it until the next
 * full collection, with everything its entries point to: the young collections then keep and
 * promote every value that passed through the map. A worker's maps of running jobs churn by a job
 * each: in a drain of 500,000 jobs in batches, its young collections promoted about 250 bytes per
 * job after the first full collection instead of a few, and took three times as long. Here the map
 * holds slot numbers, so its old tables keep only keys (ids, short strings) alive; the values sit
 * in an array whose slots are cleared when they are deleted. (Keeping deleted keys in the map,
 * marked, so that it is never replaced table by table, promoted less but cost the worker more.)
 */
export class SlotMap<K, V> {
  /** Each key's slot in `#slots`. */
  readonly #index = new Map<K, number>();
  readonly #slots: (V | undefined)[] = [];
  readonly #free: number[] = [];

  get size(): number {
    return this.#index.size;
  }

  get(key: K): V | undefined {
    const slot = this.#index.get(key);
    return slot === undefined ? undefined : this.#slots[slot];
  }

  has(key: K): boolean {
    return this.#index.has(key);
  }

  /** Sets the value of `key`; a new key goes last in iteration order, as in a `Map`. */
  set(key: K, value: V): void {
    let slot = this.#index.get(key);
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#slots.length;
      this.#index.set(key, slot);
    }
    this.#slots[slot] = value;
  }

  delete(key: K): boolean {
    const slot = this.#index.get(key);
    if (slot === undefined) return false;
    this.#index.delete(key);
    this.#slots[slot] = undefined;
    this.#free.push(slot);
    return true;
  }

  clear(): void {
    this.#index.clear();
    this.#slots.length = 0;
    this.#free.length = 0;
  }

  /** The keys, in insertion order. */
  keys(): IterableIterator<K> {
    return this.#index.keys();
  }

  /** The values, in their keys' insertion order. */
  *values(): IterableIterator<V> {
    for (const slot of this.#index.values()) yield this.#slots[slot] as V;
  }

  /** `[key, value]` pairs, in insertion order. */
  *entries(): IterableIterator<[K, V]> {
    for (const [key, slot] of this.#index) yield [key, this.#slots[slot] as V];
  }

  [Symbol.iterator](): IterableIterator<[K, V]> {
    return this.entries();
  }
}

/**
 * Values in an array of reusable slots, each known by the index `add` answered: a `Set` of objects
 * without a hash table (see {@link SlotMap} for why), for holders that keep their value's index.
 */
export class Slots<V> {
  readonly #slots: (V | undefined)[] = [];
  readonly #free: number[] = [];
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Stores `value` and answers its slot. */
  add(value: V): number {
    const slot = this.#free.pop() ?? this.#slots.length;
    this.#slots[slot] = value;
    this.#size++;
    return slot;
  }

  /** The value in `slot`, or `undefined` for an empty one. */
  get(slot: number): V | undefined {
    return this.#slots[slot];
  }

  /** Replaces the value in `slot`, which holds one (answered by `add`, not removed since). */
  set(slot: number, value: V): void {
    if (this.#slots[slot] !== undefined) this.#slots[slot] = value;
  }

  /** One more than the highest slot in use so far: `get` of every slot below it walks them all. */
  get end(): number {
    return this.#slots.length;
  }

  /** Empties `slot` (answered by `add`, not removed since). */
  remove(slot: number): void {
    if (this.#slots[slot] === undefined) return;
    this.#slots[slot] = undefined;
    this.#free.push(slot);
    this.#size--;
  }

  /** The values held now (a copy: removing while iterating it is safe). */
  values(): V[] {
    const out: V[] = [];
    for (const value of this.#slots) if (value !== undefined) out.push(value);
    return out;
  }

  clear(): void {
    this.#slots.length = 0;
    this.#free.length = 0;
    this.#size = 0;
  }
}
