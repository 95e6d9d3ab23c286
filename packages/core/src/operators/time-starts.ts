import {
  asyncScheduler,
  catchError,
  concat,
  defer,
  EMPTY,
  ignoreElements,
  map,
  mergeMap,
  type Observable,
  of,
  type OperatorFunction,
  type SchedulerLike,
  type Subscription,
  tap,
  timer,
  type Unsubscribable,
} from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import type { ReservedJob } from '../model/job';
import type { LimitGrant, Reservation, StartGate } from '../model/reservation';
import { LeaseClock, localSlop, preciseNow } from '../runtime/lease-clock';
import { SlidingWindowLimiter } from '../runtime/limiter';
import type { RateLimitSpec, RebaseResult, Store } from '../store/store';

/** A pipeline's rate limit as configured; see `RateLimitSpec` for what the store enforces. */
export interface PipelineRateLimit {
  readonly allowed: number;
  readonly periodMs: number;
  /** Share the limit with other pipelines (on any node) that name the same key. Default: the queue. */
  readonly key?: string;
  /** `'job'` (default) counts jobs started; `'call'` counts handler calls (each up to one batch). */
  readonly per?: 'job' | 'call';
  /**
   * Safety margin added to the window the store enforces: the store counts a start when it grants
   * the lease, and the handler starts a little later; as long as that delay varies by less than the
   * margin, handler start times hold the limit too. Default: 0.5% of `periodMs`, at most 10 ms (5 ms
   * for a 1 s window, costing 0.5% of the rate).
   */
  readonly marginMs?: number;
  /**
   * Every start waits until this long after the store counted it (the grant's store time mapped onto
   * the worker's clock, or the usual round trip if longer), so starts keep the spacing the limit gave
   * the grants even when a worker is slow to start a burst. A start later than that first moves its
   * count in the store to just before the present. Costs that much latency, not rate. Default: 3% of
   * `periodMs`, between 5 and 30 ms (30 ms for 1 s).
   */
  readonly alignStartsMs?: number;
}

/** The margin the store's window carries for a limit (see `marginMs`). */
export function rateMargin(limit: PipelineRateLimit): number {
  const margin = limit.marginMs ?? Math.min(10, Math.round(limit.periodMs * 0.005));
  if (!(margin >= 0)) throw new InvalidArgumentError(`rateLimit.marginMs must be ≥ 0, got ${margin}`);
  return margin;
}

/** How long after its grant a start is due (see `alignStartsMs`). */
export function startAlignment(limit: PipelineRateLimit): number {
  const align = limit.alignStartsMs ?? Math.min(30, Math.max(5, Math.round(limit.periodMs * 0.03)));
  if (!(align >= 0)) throw new InvalidArgumentError(`rateLimit.alignStartsMs must be ≥ 0, got ${align}`);
  return align;
}

/**
 * The limit the store enforces for a pipeline's configured limit: the window widened by the margin,
 * `jobsPerCall` jobs per unit when it counts calls.
 */
export function storeLimit(limit: PipelineRateLimit, queue: string, jobsPerCall: number): RateLimitSpec {
  const per = limit.per ?? 'job';
  return {
    key: limit.key ?? queue,
    allowed: limit.allowed,
    periodMs: limit.periodMs + rateMargin(limit),
    per,
    jobsPerCall: per === 'call' ? jobsPerCall : 1,
  };
}

/**
 * Jobs a limit can grant while their starts wait out the alignment: they hold no handler slot but
 * are in flight, so a pipeline's budget covers them.
 */
export function alignmentSlots(limit: PipelineRateLimit, jobsPerCall: number): number {
  const perUnit = (limit.per ?? 'job') === 'call' ? jobsPerCall : 1;
  return Math.ceil((limit.allowed * perUnit * startAlignment(limit)) / limit.periodMs);
}

/**
 * The window of a process's own check of handler starts: the store's, with a margin of at least
 * 1 ms (the handler reads the clock a moment after the gate).
 */
export function localWindow(spec: RateLimitSpec, margin: number): number {
  return spec.periodMs - margin + Math.max(1, margin);
}

/** Configuration of {@link timeStarts}. */
export interface TimeStartsConfig {
  /** The store that granted the reservations (it reads its clock and moves late counts). */
  readonly store: Store;
  readonly queue: string;
  readonly limit: PipelineRateLimit;
  /** Jobs per handler call when the limit counts calls. Default `1`. */
  readonly jobsPerCall?: number;
  /**
   * This process's check of handler start times, on its own clock, with the store's window (and
   * margin). Default: one of its own.
   */
  readonly limiter?: SlidingWindowLimiter;
  /** Store-clock readings before the first reservation is taken. Default `5`. */
  readonly clockReadings?: number;
  /** Clock and timers. Default `asyncScheduler` (read to a fraction of a millisecond). */
  readonly scheduler?: SchedulerLike;
}

/**
 * Most times one unit's count is moved before it starts anyway: only reached when the store cannot
 * answer within the alignment again and again (a badly overloaded worker or link).
 */
const MAX_MOVES = 16;

/**
 * Times the handler starts of a rate-limited pipeline so that, as a provider sees them, they hold the
 * limit the store counted.
 *
 * Intuition: the store counts a start when it grants the lease, on its own clock; the handler runs
 * later, after the answer crosses the network and the event loop. If every start trails its grant by
 * the same delay, starts keep the grants' spacing. So each reservation waits (holding no handler
 * slot) until a fixed alignment after its grant, mapped onto this process's clock; and once a slot
 * is free, the gate it carries checks the clock again in the same turn as the handler call.
 *
 * ```
 * grants (store):   a-b-c------          alignment 3 frames
 * timeStarts:       ---a-b-c---          (each reservation due 3 frames after its grant)
 * ```
 *
 * - The clock: each reserve's round trip (and, before the first reserve, `clockReadings` reads of
 *   the store's clock) bounds the offset between the two clocks (`LeaseClock`).
 * - A unit whose grant's local time is known less well than the margin allows is moved once in the
 *   store before it starts (`store.rebaseLimit`).
 * - A unit that starts later than its due time by more than `lateAfterMs` (a stall, a wait for a free
 *   slot) first moves its count to just before the store's now, then starts as the answer arrives.
 * - Last, this process's own limiter checks the start on the local clock.
 *
 * Emits each reservation with a {@link StartGate} (`reservation.gate`) that the concurrency stages
 * ask before each handler call.
 *
 * ## Example
 * ```ts
 * reservations$.pipe(
 *   timeStarts({ store, queue: 'emails', limit: { allowed: 400, periodMs: 1000 } }),
 *   processJobs(send, { pipeline: 'emails', concurrency: 10 }),
 * );
 * ```
 */
export function timeStarts<T>(config: TimeStartsConfig): OperatorFunction<Reservation<T>, Reservation<T>> {
  const make = startTiming(config); // checks the config at once
  return (reservations$) =>
    defer(() => {
      const timing = make();
      return concat(timing.warmUp(), reservations$.pipe(timing.align<T>()));
    });
}

/**
 * The state behind {@link timeStarts}, for a frame that must read the store's clock before its
 * source is subscribed at all (the source may be shared, as a pipeline's is: a branch subscribed
 * late would miss reservations): `warmUp()` first, then `align()` where the reservations pass.
 */
export interface StartTimer {
  /** Reads the store's clock `clockReadings` times, best effort; emits nothing. */
  warmUp(): Observable<never>;
  /** Delays each reservation until it is due and puts the gate on it. */
  align<T>(): OperatorFunction<Reservation<T>, Reservation<T>>;
}

/** Checks a {@link TimeStartsConfig} and returns a maker of fresh start timers (one per run). */
export function startTiming(config: TimeStartsConfig): () => StartTimer {
  const { store, queue, limit } = config;
  const jobsPerCall = config.jobsPerCall ?? 1;
  const spec = storeLimit(limit, queue, jobsPerCall);
  const margin = rateMargin(limit);
  const alignMs = startAlignment(limit);
  const readings = config.clockReadings ?? 5;
  return () => {
    const scheduler = config.scheduler ?? asyncScheduler;
    const timing = new StartTiming({
      store,
      queue,
      spec,
      per: limit.per ?? 'job',
      alignMs,
      margin,
      scheduler,
      limiter: config.limiter,
    });
    return {
      warmUp: () => {
        const storeTime = store.storeTime?.bind(store);
        if (!storeTime || readings <= 0) return EMPTY;
        // Before the first reserve, a few readings of the store's clock: a cold process's first
        // reserves are slow and would teach the clock little, so their grants would all be moved.
        const reading = timing.timed(
          () => storeTime(queue),
          (at) => at,
        );
        return concat(...Array.from({ length: readings }, () => reading)).pipe(
          ignoreElements(),
          catchError(() => EMPTY), // best effort: reserves teach the clock too
        );
      },
      align:
        <T>() =>
        (reservations$: Observable<Reservation<T>>) =>
          reservations$.pipe(
            tap((r) => {
              if (r.grant) timing.observe(r.grant);
            }),
            mergeMap((r) => {
              const gated: Reservation<T> = { ...r, gate: timing };
              const wait = r.jobs.length > 0 ? timing.dueAt(r.grant).at - timing.now() : 0;
              return wait > 0 ? timer(wait, scheduler).pipe(map(() => gated)) : of(gated);
            }),
          ),
    };
  };
}

interface TimingConfig {
  readonly store: Store;
  readonly queue: string;
  readonly spec: RateLimitSpec;
  readonly per: 'job' | 'call';
  readonly alignMs: number;
  readonly margin: number;
  readonly scheduler: SchedulerLike;
  readonly limiter: SlidingWindowLimiter | undefined;
}

/** The start timing of one pipeline run: its clock mapping, moves and local limiter. */
class StartTiming implements StartGate {
  readonly now: () => number;
  private readonly clock = new LeaseClock();
  private readonly moveTrips: RoundTrips;
  /** Starts may trail their due time by this much; with the uncertainty allowed below, start times vary by less than the margin. */
  readonly lateAfterMs: number;
  /** How far a grant's local time may be unknown before it is moved (the rest of the margin, less 0.5 ms for the handler's first steps). */
  private readonly maxUncertaintyMs: number;
  readonly limiter: SlidingWindowLimiter;

  constructor(readonly config: TimingConfig) {
    // Sub-millisecond on the wall clock: two whole-millisecond clocks would spend 2 ms of the margin.
    this.now = preciseNow(config.scheduler);
    this.moveTrips = new RoundTrips(this.now);
    this.lateAfterMs = Math.max(1.5, config.margin * 0.4);
    this.maxUncertaintyMs = Math.max(1.5, config.margin - this.lateAfterMs - 0.5);
    // The store's window (with its margin, at least 1 ms): the handler reads the clock a moment after the gate.
    this.limiter =
      config.limiter ??
      new SlidingWindowLimiter({
        allowed: config.spec.allowed,
        periodMs: localWindow(config.spec, config.margin),
      });
  }

  observe(grant: LimitGrant): void {
    this.clock.observe(grant.sentAt, grant.receivedAt, grant.at);
  }

  /** A store call whose answer carries the store's time: one more round trip for the clock. */
  timed<V>(call: () => Observable<V>, storeAt: (answer: V) => number | undefined): Observable<V> {
    return defer(() => {
      const sentAt = this.now();
      return call().pipe(
        tap((answer) => {
          const at = storeAt(answer);
          if (at !== undefined) this.clock.observe(sentAt, this.now(), at);
        }),
      );
    });
  }

  /**
   * When a unit counted at `grant.at` (store time) may start: the grant's local time, known to lie
   * within both the call's own round trip and what the clock has learnt, plus the alignment.
   */
  dueAt(grant: LimitGrant | undefined): { at: number; certain: boolean } {
    if (!grant) return { at: this.now(), certain: true };
    const [earliest, latest] = this.clock.bounds(grant.at);
    const low = Math.max(earliest, grant.sentAt);
    const slop = localSlop(grant.sentAt, grant.receivedAt);
    const high = Math.min(latest, grant.receivedAt + slop);
    const local = high >= low ? (low + high) / 2 : this.clock.toLocal(grant.at);
    return {
      // Whole milliseconds on a whole-millisecond clock (a virtual one steps in whole frames).
      at: (slop ? Math.floor(local) : local) + Math.max(this.config.alignMs, this.clock.usualRoundTrip()),
      certain: high >= low && high - low <= this.maxUncertaintyMs,
    };
  }

  /**
   * Moves `units` counted at `grantedAt` to the present. A unit moved the first time counts from
   * shortly before the store's now: as long before as the alignment, less the lateness allowed and
   * the slowest recent move, so a start made as the answer arrives trails its count by the alignment
   * like every other start. A unit moved again (the answer was slower than that) counts from now and
   * waits out the whole alignment.
   */
  rebase(units: number, grantedAt: number, moves: number): Observable<RebaseResult> | undefined {
    const { store, queue, spec, alignMs } = this.config;
    if (!store.rebaseLimit) return undefined;
    const rebaseLimit = store.rebaseLimit.bind(store);
    const slack = this.lateAfterMs + this.moveTrips.recentSlowest();
    const lag = moves === 0 ? Math.max(0, alignMs - slack) : 0;
    return this.timed(
      () => rebaseLimit(queue, spec, grantedAt, units, lag),
      (r) => (r.moved ? r.now : undefined),
    ).pipe(this.moveTrips.time());
  }

  admit(jobs: readonly ReservedJob[], grant: LimitGrant | undefined, start: () => void): Unsubscribable {
    const first = jobs[0];
    const at = first?.lease.startedAt ?? 0;
    const attempt = new GatedStart(this, jobs.length, grant ?? { at, sentAt: at, receivedAt: at }, start);
    attempt.tryStart();
    return attempt;
  }
}

/** One unit waiting at the gate: its grant (or where a move put it) and its moves so far. */
class GatedStart implements Unsubscribable {
  private sub: Subscription | undefined;
  private closed = false;
  /** Start without the due-time check (the store could not be reached to move a late start). */
  private forced = false;
  /** An uncertain grant was moved once already. */
  private movedForCertainty = false;
  private moves = 0;
  private readonly retry = (): void => {
    this.tryStart();
  };

  constructor(
    private readonly timing: StartTiming,
    private readonly jobs: number,
    private grant: LimitGrant,
    private readonly start: () => void,
  ) {}

  unsubscribe(): void {
    this.closed = true;
    this.sub?.unsubscribe();
  }

  tryStart(): void {
    if (this.closed) return;
    const timing = this.timing;
    const { scheduler, per } = timing.config;
    const limiter = timing.limiter;
    // Units of the limit: a call counts once, jobs each (never more than the limit allows).
    const want = Math.min(per === 'call' ? 1 : this.jobs, limiter.allowed);
    const now = timing.now();
    const due = this.forced ? { at: now, certain: true } : timing.dueAt(this.grant);
    const canMove = timing.config.store.rebaseLimit !== undefined;
    const uncertain = canMove && !due.certain && !this.movedForCertainty;
    if (!uncertain && now < due.at) {
      this.sub = timer(due.at - now, scheduler).subscribe(this.retry);
      return;
    }
    if (canMove && (uncertain || now - due.at > timing.lateAfterMs)) {
      // Late (this process stalled), or not known to be on time: count the start now, in the store.
      this.move(want, now);
      return;
    }
    if (limiter.available(now) >= want) {
      limiter.record(want, now);
      this.closed = true;
      this.start();
    } else {
      this.sub = timer(Math.max(1, limiter.retryAfter(now)), scheduler).subscribe(this.retry);
    }
  }

  private move(want: number, sentAt: number): void {
    const timing = this.timing;
    const moved$ = timing.rebase(want, this.grant.at, this.moves);
    if (!moved$) return;
    this.sub = moved$.subscribe({
      next: (r) => {
        if (r.moved) {
          this.movedForCertainty = true;
          if (++this.moves >= MAX_MOVES) this.forced = true;
          // The units count from `r.at`, `r.now − r.at` before the store's now: the call's local
          // times, shifted back by as much, bound the local time of `r.at`.
          const shift = r.now - r.at;
          this.grant = { at: r.at, sentAt: sentAt - shift, receivedAt: timing.now() - shift };
          this.tryStart();
        } else {
          this.sub = timer(Math.max(1, r.retryAfterMs), timing.config.scheduler).subscribe(this.retry);
        }
      },
      // Best effort (the store cannot be reached, or cannot move counts): the start was counted at
      // the grant already.
      error: () => {
        this.forced = true;
        this.tryStart();
      },
    });
  }
}

/** The slowest of the last few round trips of one kind of call. */
class RoundTrips {
  private readonly trips: number[] = [];
  private next = 0;
  constructor(
    private readonly now: () => number,
    private readonly size = 8,
  ) {}

  /** Times each subscription to the source until its first value. */
  time<V>(): OperatorFunction<V, V> {
    return (source$) =>
      defer(() => {
        const sentAt = this.now();
        let first = true;
        return source$.pipe(
          tap(() => {
            if (!first) return;
            first = false;
            this.trips[this.next] = this.now() - sentAt;
            this.next = (this.next + 1) % this.size;
          }),
        );
      });
  }

  recentSlowest(): number {
    let max = 0;
    for (const t of this.trips) max = Math.max(max, t);
    return max;
  }
}
