import {
  asyncScheduler,
  BehaviorSubject,
  distinctUntilChanged,
  type Observable,
  type SchedulerLike,
  type Subscription,
} from 'rxjs';
import { InvalidArgumentError, InvalidDemandError } from '../model/errors';

export interface DemandConfig {
  /** Demand granted at creation: the pipeline's in-flight budget. Must be ≥ 0. */
  readonly initial: number;
  /**
   * Replenishments are held back and released together once they add up to this (GenStage's
   * `min_demand` idea), or at the end of the current turn of the scheduler, whichever comes first —
   * so jobs that finish together cost the source one store call, and no demand waits longer than a
   * turn. The threshold never exceeds the current budget. Default `1` (no coalescing).
   */
  readonly coalesce?: number;
  /** Schedules the end-of-turn release. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
}

/**
 * The request-n channel between a pipeline's consumers and its source.
 *
 * Consumers `request(n)` when they have room for `n` more jobs; the source `take`s demand before it
 * fetches and gives back what it could not use. The source fetches nothing while `outstanding` is 0,
 * so jobs reserved but not yet settled never exceed the budget, however large the backlog.
 *
 * The Reactive Streams rules that matter hold: `request(n)` with `n ≤ 0` (or not an integer) throws
 * {@link InvalidDemandError}; demand is cumulative; after `cancel()` requests do nothing.
 *
 * ```
 *              request(3)  take(2)  take(5)→4  request(1)  request(1)   (coalesce 2)
 * outstanding: 3 ───► 6 ─────► 4 ─────► 0 ──────── 0 ───────── 2 ────►
 * ```
 *
 * ## Example
 * ```ts
 * const demand = new Demand({ initial: 10, coalesce: 3 });
 * demand.outstanding$.subscribe((n) => console.log('outstanding', n)); // 10
 * const n = demand.take(4); // 4, outstanding 6
 * demand.request(1);        // held back (1 < 3)
 * demand.request(2);        // released together: outstanding 9
 * ```
 */
export class Demand {
  private readonly outstandingSubject: BehaviorSubject<number>;
  private held = 0;
  private debt = 0;
  private budget: number;
  private cancelled = false;
  private readonly coalesce: number;
  private readonly scheduler: SchedulerLike;
  private flush: Subscription | undefined;

  constructor(config: DemandConfig) {
    if (!Number.isInteger(config.initial) || config.initial < 0) {
      throw new InvalidArgumentError(`initial demand must be an integer ≥ 0, got ${String(config.initial)}`);
    }
    const coalesce = config.coalesce ?? 1;
    if (!Number.isInteger(coalesce) || coalesce < 1) {
      throw new InvalidArgumentError(`coalesce must be an integer ≥ 1, got ${String(coalesce)}`);
    }
    this.coalesce = coalesce;
    this.scheduler = config.scheduler ?? asyncScheduler;
    this.budget = config.initial;
    this.outstandingSubject = new BehaviorSubject(config.initial);
  }

  /** Demand the source may use now. */
  get outstanding(): number {
    return this.outstandingSubject.value;
  }

  /** Replenishments held back by coalescing, not yet usable by the source. */
  get pending(): number {
    return this.held;
  }

  get isCancelled(): boolean {
    return this.cancelled;
  }

  /** Emits the outstanding demand now and whenever it changes. Completes on `cancel()`. */
  get outstanding$(): Observable<number> {
    return this.outstandingSubject.pipe(distinctUntilChanged());
  }

  /** Signals room for `n` more jobs. Throws on `n ≤ 0`; ignored after `cancel()`. */
  request(n: number): void {
    if (!Number.isInteger(n) || n <= 0) throw new InvalidDemandError(n);
    if (this.cancelled) return;
    this.held += n;
    if (this.held >= Math.min(this.coalesce, Math.max(1, this.budget))) this.release();
    else
      this.flush ??= this.scheduler.schedule(() => {
        this.flush = undefined;
        if (this.held > 0 && !this.cancelled) this.release();
      });
  }

  /**
   * Reserves up to `max` of the outstanding demand for a fetch and returns how much was taken (0 when
   * there is none), rounded down to a multiple of `multipleOf` (whole batches for a limit per call).
   * Give back what the fetch did not use with {@link giveBack}.
   */
  take(max: number, multipleOf = 1): number {
    if (this.cancelled) return 0;
    const upTo = Math.max(0, Math.min(max, this.outstanding));
    const n = multipleOf > 1 ? upTo - (upTo % multipleOf) : upTo;
    if (n > 0) this.set(this.outstanding - n);
    return n;
  }

  /** Returns demand a fetch took but did not use. Unlike `request`, never coalesced. */
  giveBack(n: number): void {
    if (n <= 0 || this.cancelled) return;
    this.set(this.outstanding + n);
  }

  /**
   * Changes the budget at runtime (a concurrency change): adds or withdraws demand by `delta`. What
   * cannot be withdrawn now (it is in flight) is owed and absorbed by later requests, or by a later
   * addition.
   */
  adjust(delta: number): void {
    if (this.cancelled || delta === 0) return;
    this.budget = Math.max(0, this.budget + delta);
    if (delta > 0) {
      // What is still owed from an earlier withdrawal is settled first.
      const paid = Math.min(delta, this.debt);
      this.debt -= paid;
      if (delta > paid) this.set(this.outstanding + delta - paid);
      return;
    }
    // Withdraw from held and outstanding first; what remains is owed and absorbed by later requests.
    let owed = -delta;
    const fromHeld = Math.min(owed, this.held);
    this.held -= fromHeld;
    owed -= fromHeld;
    const fromOutstanding = Math.min(owed, this.outstanding);
    owed -= fromOutstanding;
    this.debt += owed;
    this.set(this.outstanding - fromOutstanding);
    // A smaller budget lowers the coalescing threshold: release what is now enough.
    if (this.held > 0 && this.held >= Math.min(this.coalesce, Math.max(1, this.budget))) this.release();
  }

  /** Stops all demand. Idempotent. */
  cancel(): void {
    if (this.cancelled) return;
    this.cancelled = true;
    this.held = 0;
    this.flush?.unsubscribe();
    this.flush = undefined;
    this.outstandingSubject.next(0);
    this.outstandingSubject.complete();
  }

  private release(): void {
    this.flush?.unsubscribe();
    this.flush = undefined;
    let n = this.held;
    this.held = 0;
    const paid = Math.min(n, this.debt);
    this.debt -= paid;
    n -= paid;
    if (n > 0) this.set(this.outstanding + n);
  }

  private set(value: number): void {
    this.outstandingSubject.next(value);
  }
}
