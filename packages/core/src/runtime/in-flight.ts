import { JobAbortedError } from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { LeaseRef } from '../store/store';
import { Slots } from '../util/slot-map';

export type AbortKind = 'cancelled' | 'lease-lost' | 'shutdown';

/** An abort that arrived before the job's handler started. */
export interface PendingAbort {
  readonly cause: AbortKind;
  readonly detail: string | undefined;
}

/**
 * One job held. A class, not an object literal: V8 decides per literal (its allocation site) whether
 * to allocate its objects straight in the old generation ("pretenuring"), from how many of them
 * survived a young collection. A worker's first reserve leases a whole prefetch at once and holds
 * every job through the first collections, so the sites of its per-job literals were judged long
 * lived, for good: every later job's objects went to the old generation, to die there, and the young
 * collections promoted about 0.6–1.7 MB each. Objects made by `new` are not tracked that way. The
 * same holds for the job (`LeasedJob` in @sluice/redis), its handled record and its settlement.
 */
export class Held {
  /** Aborts the running handler (its unit's `abort`), while one runs. */
  abort: ((reason: Error) => void) | undefined = undefined;
  /** Its settlement is sent and not yet answered (see {@link InFlight.settling}). */
  settling = false;

  constructor(
    readonly job: ReservedJob,
    /** Set when an abort arrived before the handler started. */
    public pending: PendingAbort | undefined,
    /** When it was added, in the holder's count: listings keep that order. */
    readonly seq: number,
  ) {}

  /** Its place in the holder's slots (another value there once it is removed or replaced). */
  slot = -1;
}

/**
 * A constructor that answers the object it is given, so that a class extending it ({@link HeldMark})
 * adds its fields to that object instead of a new one. Given nothing, it answers nothing, and `new`
 * makes the object as for any class.
 */
const Given = function (target?: object): object | undefined {
  return target;
} as unknown as new (target?: object) => object;

/**
 * Marks a held job object with its {@link Held}, in a private field (a JavaScript `#` field:
 * invisible to `Object.keys`, symbols, `JSON.stringify`, `util.inspect` and Jest's equality, and read
 * without hashing). So the stages that have the job find its entry without looking its id up in a
 * map.
 *
 * Two ways to carry the field. A store's job class may extend this one (`LeasedJob` in
 * @sluice/redis does): its objects have the field from their construction, in the object itself.
 * Any other job object gets it added when it is first held (`new HeldMark(job)`: the constructor
 * answers the object it is given): V8 then keeps it outside the object, in a small array of its
 * own (40 bytes more per job), since the object's size was fixed when it was made.
 *
 * `new HeldMark(target)` adds the field to `target`; `new HeldMark()` (a subclass's `super()`) to the
 * object being constructed.
 */
export class HeldMark extends Given {
  #held: Held | undefined;

  static read(job: object): Held | undefined {
    return #held in job ? job.#held : undefined;
  }

  static write(job: object, held: Held): void {
    if (!(#held in job)) {
      try {
        new HeldMark(job);
      } catch {
        return; // an object that takes no field (a proxy that refuses it): found by its id instead
      }
    }
    (job as HeldMark).#held = held;
  }
}

/**
 * The jobs a pipeline holds a lease on: reserved and not yet settled. The source adds them, the
 * process stage attaches each handler's `AbortController`, the settle stage removes them once their
 * settlement is answered. Heartbeats extend exactly these leases, and cancellations are routed
 * through it.
 *
 * A job whose settlement is sent to a store that applies calls in order (`Store.settlesInOrder`) is
 * `settling`: settled before any later reserve, so its demand is back and it no longer counts in
 * `size`, though its lease is still extended until the answer comes.
 *
 * Its size is the quantity the demand channel bounds: `size ≤ budget` at every moment.
 *
 * The entries are in an array of reusable slots, and each job object carries its entry (a private
 * field, see `HeldMark`): the stages that have the job ({@link start}, {@link settlingOf},
 * {@link settledHeld}, {@link removeOf}) reach its entry without a lookup of its id. A `Map` of ids
 * cost about a tenth of a batch worker's CPU profile in its sets and deletes, and V8 replaces a
 * `Map`'s hash table as deleted entries pile up, the old one keeping its entries reachable until the
 * next full collection (see `SlotMap` in util/slot-map.ts). What has only an id (a cancellation, a
 * lease found lost, the by-id methods) walks the slots: at most the prefetch and the settles in
 * flight. The same id may be held twice for a while: a job leased again (a retry the next reserve
 * took) before the answer to its earlier lease's settlement came; each lease is its own entry.
 */
export class InFlight {
  private readonly slots = new Slots<Held>();
  private added = 0;
  private settlingCount = 0;
  private peak = 0;
  private closed = false;

  /** Jobs held and not settling: what the budget bounds. */
  get size(): number {
    return this.slots.size - this.settlingCount;
  }

  /** Every job held, settling ones included (their leases are still extended). */
  get held(): number {
    return this.slots.size;
  }

  /** The largest `size` seen. */
  get maxSize(): number {
    return this.peak;
  }

  add(jobs: readonly ReservedJob[]): void {
    // After `close()` (a drain), jobs whose reserve was already under way must not start: they are
    // marked so the process stage hands them back (snoozed 0 ms, no attempt spent).
    const pending: PendingAbort | undefined = this.closed
      ? { cause: 'shutdown', detail: 'worker draining' }
      : undefined;
    const { slots } = this;
    for (const job of jobs) {
      const held = new Held(job, pending, this.added++);
      // The same job object added again takes its place (it is one lease of one job).
      const was = HeldMark.read(job);
      if (was !== undefined && slots.get(was.slot) === was) {
        if (was.settling) this.settlingCount--;
        held.slot = was.slot;
        slots.set(was.slot, held);
      } else {
        held.slot = slots.add(held);
      }
      HeldMark.write(job, held);
    }
    if (this.size > this.peak) this.peak = this.size;
  }

  /** The entry of `job` (this object, held here), found by its mark or else by id and lease. */
  private of(job: ReservedJob): Held | undefined {
    const held = HeldMark.read(job);
    if (held !== undefined && this.slots.get(held.slot) === held) return held;
    return this.find(job.id, job.lease.token);
  }

  /**
   * The entry of job `id`: under lease `token` when given; otherwise the one not settling (the one a
   * handler may be running for), else the last added.
   */
  private find(id: string, token?: string): Held | undefined {
    let found: Held | undefined;
    const { slots } = this;
    for (let slot = 0; slot < slots.end; slot++) {
      const held = slots.get(slot);
      if (held === undefined || held.job.id !== id) continue;
      if (token !== undefined) {
        if (held.job.lease.token === token) return held;
        continue;
      }
      if (
        found === undefined ||
        (found.settling && !held.settling) ||
        (found.settling === held.settling && held.seq > found.seq)
      ) {
        found = held;
      }
    }
    return found;
  }

  /** Removes `held` (which is in its slot). */
  private drop(held: Held): void {
    this.slots.remove(held.slot);
    if (held.settling) this.settlingCount--;
  }

  /**
   * Links a starting handler's abort; returns an abort that arrived before the start, if any. See
   * {@link start} for the form that takes the job and answers its entry.
   */
  attach(id: string, abort: (reason: Error) => void): PendingAbort | undefined {
    const held = this.find(id);
    if (held) held.abort = abort;
    return held?.pending;
  }

  /**
   * Links the abort of a handler starting `job` and answers the job's entry (`pending`: an abort
   * that arrived before the start), or `undefined` when the job is not held.
   */
  start(job: ReservedJob, abort: (reason: Error) => void): Held | undefined {
    const held = this.of(job);
    if (held) held.abort = abort;
    return held;
  }

  detach(id: string): void {
    const held = this.find(id);
    if (held) held.abort = undefined;
  }

  /** {@link detach} by the entry {@link start} answered. */
  detachHeld(held: Held): void {
    held.abort = undefined;
  }

  /**
   * Marks a job whose settlement was sent to a store that applies calls in order: true if it was
   * held under lease `token` and not settling yet (its demand can come back now). See
   * {@link settlingOf} for the form that takes the job and answers its entry.
   */
  settling(id: string, token: string): boolean {
    return this.mark(this.find(id, token)) !== undefined;
  }

  /** {@link settling} for `job`, answering its entry (for {@link settledHeld}) or `undefined`. */
  settlingOf(job: ReservedJob): Held | undefined {
    return this.mark(this.of(job));
  }

  private mark(held: Held | undefined): Held | undefined {
    if (!held || held.settling) return undefined;
    held.settling = true;
    this.settlingCount++;
    return held;
  }

  /**
   * Removes a settling job once its settlement is answered. A job leased again meanwhile (a retry
   * the next reserve took) is held afresh, under another lease, and stays.
   */
  settled(id: string, token: string): void {
    const held = this.find(id, token);
    if (held) this.settledHeld(held);
  }

  /** {@link settled} by the entry {@link settlingOf} answered. */
  settledHeld(held: Held): void {
    if (held.settling && this.slots.get(held.slot) === held) this.drop(held);
  }

  /**
   * Removes a job settled (or handed back) under lease `token`; false if it was not held under that
   * lease (a retry leased again meanwhile stays) or was settling already.
   */
  remove(id: string, token: string): boolean {
    return this.release(this.find(id, token));
  }

  /** {@link remove} for `job`. */
  removeOf(job: ReservedJob): boolean {
    return this.release(this.of(job));
  }

  private release(held: Held | undefined): boolean {
    if (!held) return false;
    const settling = held.settling;
    this.drop(held);
    return !settling;
  }

  has(id: string): boolean {
    return this.find(id) !== undefined;
  }

  /** Every entry, in the order they were added. */
  private entries(): Held[] {
    return this.slots.values().sort((a, b) => a.seq - b.seq);
  }

  /** The jobs held now. */
  jobs(): ReservedJob[] {
    const out: ReservedJob[] = [];
    for (const { job } of this.entries()) out.push(job);
    return out;
  }

  leases(): LeaseRef[] {
    const out: LeaseRef[] = [];
    for (const { job } of this.entries()) out.push({ id: job.id, token: job.lease.token });
    return out;
  }

  /**
   * Aborts the job's handler with `cause`, or remembers the abort for a job not started yet. With a
   * `token`, only if the job is held under that lease: a lease found lost belongs to one attempt,
   * and the job may be held again under a new one (its retry, leased by a reserve answered before
   * the heartbeat that found the old lease gone).
   */
  abort(id: string, cause: AbortKind, detail?: string, token?: string): boolean {
    const entry = this.find(id, token);
    if (!entry) return false;
    abortHeld(entry, cause, detail);
    return true;
  }

  /**
   * A drain began: jobs not started yet (prefetched, or in a batch being formed) and jobs added from
   * now on are handed back rather than started; running ones finish.
   */
  close(): void {
    this.closed = true;
    for (const entry of this.entries()) {
      if (!entry.abort) entry.pending ??= { cause: 'shutdown', detail: 'worker draining' };
    }
  }

  abortAll(cause: 'shutdown'): void {
    for (const entry of this.entries()) abortHeld(entry, cause, undefined);
  }
}

/** Aborts the handler running `held`'s job with `cause`, or remembers the abort for its start. */
function abortHeld(held: Held, cause: AbortKind, detail: string | undefined): void {
  if (held.abort) held.abort(new JobAbortedError(held.job.id, cause, detail));
  else held.pending ??= { cause, detail };
}
