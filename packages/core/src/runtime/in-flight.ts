import { JobAbortedError } from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { LeaseRef } from '../store/store';

export type AbortKind = 'cancelled' | 'lease-lost' | 'shutdown';

/** An abort that arrived before the job's handler started. */
export interface PendingAbort {
  readonly cause: AbortKind;
  readonly detail: string | undefined;
}

/**
 * One job held, and the handle {@link InFlight.attach} and {@link InFlight.settling} answer: the
 * stages that hold one pass it back ({@link InFlight.detachHeld}, {@link InFlight.settledHeld})
 * instead of the job's id, which would be looked up again. A class, not an object literal: V8
 * decides per literal (its allocation site) whether to allocate its objects straight in the old
 * generation ("pretenuring"), from how many of them survived a young collection. A worker's first
 * reserve leases a whole prefetch at once and holds every job through the first collections, so the
 * sites of its per-job literals were judged long lived, for good: every later job's objects went to
 * the old generation, to die there, and the young collections promoted about 0.6–1.7 MB each.
 * Objects made by `new` are not tracked that way. The same holds for the job (`LeasedJob` in
 * @sluice/redis), its handled record and its settlement.
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
    /** Its place in the holder's slots (`undefined` there once it is removed or replaced). */
    readonly slot: number,
  ) {}
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
 * The jobs are kept as a `SlotMap` (util/slot-map.ts) keeps values (an id's slot in a `Map`, the entries in an
 * array of reusable slots: a `Map`'s old hash tables would keep settled jobs alive), written out
 * here so that a job costs as few lookups of its id as its path needs: one to add it, one when its
 * handler starts ({@link attach}: the process stage keeps the handle for {@link detachHeld}), one
 * when its settlement is sent ({@link settling}: the settle stage keeps the handle for
 * {@link settledHeld}) and the removal. (With a `SlotMap` and the ids passed at each step, a job
 * took about nine, a tenth of a batch worker's CPU profile.)
 */
export class InFlight {
  /** Each held job's slot in `slots`, by id. */
  private readonly index = new Map<string, number>();
  private readonly slots: (Held | undefined)[] = [];
  private readonly free: number[] = [];
  private settlingCount = 0;
  private peak = 0;
  private closed = false;

  /** Jobs held and not settling: what the budget bounds. */
  get size(): number {
    return this.index.size - this.settlingCount;
  }

  /** Every job held, settling ones included (their leases are still extended). */
  get held(): number {
    return this.index.size;
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
    const { index, slots } = this;
    for (const job of jobs) {
      let slot = index.get(job.id);
      if (slot === undefined) {
        slot = this.free.pop() ?? slots.length;
        index.set(job.id, slot);
      } else if ((slots[slot] as Held).settling) this.settlingCount--;
      slots[slot] = new Held(job, pending, slot);
    }
    if (this.size > this.peak) this.peak = this.size;
  }

  /** The job held as `id`. */
  private get(id: string): Held | undefined {
    const slot = this.index.get(id);
    return slot === undefined ? undefined : this.slots[slot];
  }

  /** Whether `held` is still what its slot holds (not removed, not replaced by a new lease). */
  private holds(held: Held): boolean {
    return this.slots[held.slot] === held;
  }

  /** Removes `held` (which `holds`). */
  private drop(held: Held): void {
    this.index.delete(held.job.id);
    this.slots[held.slot] = undefined;
    this.free.push(held.slot);
  }

  /**
   * Links a starting handler's abort; returns an abort that arrived before the start, if any. See
   * {@link start} for the form that answers the handle.
   */
  attach(id: string, abort: (reason: Error) => void): PendingAbort | undefined {
    return this.start(id, abort)?.pending;
  }

  /**
   * Links a starting handler's abort and answers the job's handle (`pending`: an abort that arrived
   * before the start), or `undefined` when the job is not held.
   */
  start(id: string, abort: (reason: Error) => void): Held | undefined {
    const held = this.get(id);
    if (held) held.abort = abort;
    return held;
  }

  detach(id: string): void {
    const held = this.get(id);
    if (held) held.abort = undefined;
  }

  /** {@link detach} by the handle {@link start} answered. */
  detachHeld(held: Held): void {
    held.abort = undefined;
  }

  /**
   * Marks a job whose settlement was sent to a store that applies calls in order: true if it was
   * held under lease `token` and not settling yet (its demand can come back now). See
   * {@link settlingHeld} for the form that answers the handle.
   */
  settling(id: string, token: string): boolean {
    return this.settlingHeld(id, token) !== undefined;
  }

  /** {@link settling}, answering the job's handle (for {@link settledHeld}) or `undefined`. */
  settlingHeld(id: string, token: string): Held | undefined {
    const held = this.under(id, token);
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
    const held = this.under(id, token);
    if (held) this.settledHeld(held);
  }

  /** {@link settled} by the handle {@link settlingHeld} answered. */
  settledHeld(held: Held): void {
    if (!held.settling || !this.holds(held)) return;
    this.drop(held);
    this.settlingCount--;
  }

  /**
   * Removes a job settled (or handed back) under lease `token`; false if it was not held under that
   * lease (a retry leased again meanwhile stays) or was settling already.
   */
  remove(id: string, token: string): boolean {
    const held = this.under(id, token);
    if (!held) return false;
    this.drop(held);
    if (!held.settling) return true;
    this.settlingCount--;
    return false;
  }

  has(id: string): boolean {
    return this.index.has(id);
  }

  /** The job's entry if it is held under lease `token`. */
  private under(id: string, token: string): Held | undefined {
    const held = this.get(id);
    return held?.job.lease.token === token ? held : undefined;
  }

  /** Every job held, in the order their ids were first added. */
  private *entries(): IterableIterator<Held> {
    for (const slot of this.index.values()) yield this.slots[slot] as Held;
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
    const entry = token === undefined ? this.get(id) : this.under(id, token);
    if (!entry) return false;
    if (entry.abort) entry.abort(new JobAbortedError(id, cause, detail));
    else entry.pending ??= { cause, detail };
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
    for (const id of [...this.index.keys()]) this.abort(id, cause);
  }
}
