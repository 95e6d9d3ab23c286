import { JobAbortedError } from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { LeaseRef } from '../store/store';
import { SlotMap } from '../util/slot-map';

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
class Entry {
  /** Aborts the running handler (its unit's `abort`), while one runs. */
  abort: ((reason: Error) => void) | undefined = undefined;
  /** Its settlement is sent and not yet answered (see {@link InFlight.settling}). */
  settling = false;

  constructor(
    readonly job: ReservedJob,
    /** Set when an abort arrived before the handler started. */
    public pending: PendingAbort | undefined,
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
 */
export class InFlight {
  /** By job id; a {@link SlotMap}, not a `Map`, whose old hash tables would keep settled jobs alive. */
  private readonly entries = new SlotMap<string, Entry>();
  private settlingCount = 0;
  private peak = 0;
  private closed = false;

  /** Jobs held and not settling: what the budget bounds. */
  get size(): number {
    return this.entries.size - this.settlingCount;
  }

  /** Every job held, settling ones included (their leases are still extended). */
  get held(): number {
    return this.entries.size;
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
    for (const job of jobs) {
      const was = this.entries.get(job.id);
      if (was?.settling) this.settlingCount--;
      this.entries.set(job.id, new Entry(job, pending));
    }
    if (this.size > this.peak) this.peak = this.size;
  }

  /** Links a starting handler's abort; returns an abort that arrived before the start, if any. */
  attach(id: string, abort: (reason: Error) => void): PendingAbort | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    entry.abort = abort;
    return entry.pending;
  }

  detach(id: string): void {
    const entry = this.entries.get(id);
    if (entry) entry.abort = undefined;
  }

  /**
   * Marks a job whose settlement was sent to a store that applies calls in order: true if it was
   * held under lease `token` and not settling yet (its demand can come back now).
   */
  settling(id: string, token: string): boolean {
    const entry = this.under(id, token);
    if (!entry || entry.settling) return false;
    entry.settling = true;
    this.settlingCount++;
    return true;
  }

  /**
   * Removes a settling job once its settlement is answered. A job leased again meanwhile (a retry
   * the next reserve took) is held afresh, under another lease, and stays.
   */
  settled(id: string, token: string): void {
    const entry = this.under(id, token);
    if (!entry?.settling) return;
    this.entries.delete(id);
    this.settlingCount--;
  }

  /**
   * Removes a job settled (or handed back) under lease `token`; false if it was not held under that
   * lease (a retry leased again meanwhile stays) or was settling already.
   */
  remove(id: string, token: string): boolean {
    const entry = this.under(id, token);
    if (!entry) return false;
    this.entries.delete(id);
    if (!entry.settling) return true;
    this.settlingCount--;
    return false;
  }

  has(id: string): boolean {
    return this.entries.has(id);
  }

  /** The job's entry if it is held under lease `token`. */
  private under(id: string, token: string): Entry | undefined {
    const entry = this.entries.get(id);
    return entry?.job.lease.token === token ? entry : undefined;
  }

  /** The jobs held now. */
  jobs(): ReservedJob[] {
    const out: ReservedJob[] = [];
    for (const { job } of this.entries.values()) out.push(job);
    return out;
  }

  leases(): LeaseRef[] {
    const out: LeaseRef[] = [];
    for (const { job } of this.entries.values()) out.push({ id: job.id, token: job.lease.token });
    return out;
  }

  /**
   * Aborts the job's handler with `cause`, or remembers the abort for a job not started yet. With a
   * `token`, only if the job is held under that lease: a lease found lost belongs to one attempt,
   * and the job may be held again under a new one (its retry, leased by a reserve answered before
   * the heartbeat that found the old lease gone).
   */
  abort(id: string, cause: AbortKind, detail?: string, token?: string): boolean {
    const entry = token === undefined ? this.entries.get(id) : this.under(id, token);
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
    for (const entry of this.entries.values()) {
      if (!entry.abort) entry.pending ??= { cause: 'shutdown', detail: 'worker draining' };
    }
  }

  abortAll(cause: 'shutdown'): void {
    for (const id of [...this.entries.keys()]) this.abort(id, cause);
  }
}
