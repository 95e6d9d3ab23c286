import {
  asyncScheduler,
  catchError,
  concat,
  defer,
  EMPTY,
  ignoreElements,
  finalize,
  map,
  mergeMap,
  type Observable,
  of,
  type OperatorFunction,
  share,
  type SchedulerLike,
  type Subscription,
  tap,
  timer,
  type Unsubscribable,
} from 'rxjs';
import { InvalidArgumentError } from '../model/errors';
import type { LimitContext } from '../model/handler';
import type { UnusedUnits } from '../model/outcome';
import type { ReservedJob } from '../model/job';
import type { LimitGrant, Reservation, StartGate } from '../model/reservation';
import { LeaseClock } from '../runtime/lease-clock';
import type { GroupRateLimit, RateLimitSpec, RebaseResult, Store } from '../store/store';

/** A pipeline's rate limit as configured; see `RateLimitSpec` for what the store enforces. */
export interface PipelineRateLimit {
  readonly allowed: number;
  readonly periodMs: number;
  /** Share the limit with other pipelines (on any node) that name the same key. Default: the queue. */
  readonly key?: string;
  /** `'job'` (default) counts jobs started; `'call'` counts handler calls (each up to one batch). */
  readonly per?: 'job' | 'call';
  /**
   * How long after its slot (the store time its unit is recorded at) a handler may start. The
   * store counts windows of `periodMs + marginMs`, and every handler starts within `marginMs` after
   * its slot on the store's clock (a start that cannot is moved to a new slot first), so handler
   * start times hold the limit in every window of `periodMs`, on every worker. While the margin
   * is wider (see `maxMarginMs`), a unit may start as late after its slot as the margin its reserve
   * asked for: the store counted it (and every unit placed for 10 s plus the window after) with at least that. Costs
   * `marginMs / periodMs` of the rate; a larger margin moves fewer starts on a loaded machine.
   * Default: 1% of `periodMs`, between 4 and 20 ms (10 ms for a 1 s window). At least 4: the
   * store's clock reads whole milliseconds, a start is placed only where the two clocks' readings
   * leave no doubt, and 2 ms are kept for the moment between the last check and the handler's
   * own first reading of a whole-millisecond clock.
   */
  readonly marginMs?: number;
  /**
   * The most the margin grows to. Handlers that say when their request left (`ctx.limit.sent()`)
   * teach the worker how late requests leave against their slots. A request that left later than
   * `marginMs` after its slot has its unit moved in the store's log to when it left (at the
   * latest; one call per late slot, best effort): the log then holds it where the provider saw it,
   * before any slot a window later is granted, so a late request never puts one more into a window
   * the log thought full; the move costs that unit alone the time it was late. The margin the store
   * counts follows how late 9 in 10 of the last 256 requests left (plus 2 ms; fewer than 256 count
   * as on time), from `marginMs` up
   * to this cap: a margin costs every unit its width, so it keeps above what most requests need
   * and the log moves the few later ones. The store keeps the widest margin any worker sharing the key asked for in the last
   * 10 s plus the limit's window. A provider refusal (`{ retryAfter }`) doubles the margin, up to the cap, for the
   * next 256 requests: the provider saw the calls closer together than they left. A margin at its
   * cap is logged as a warning and reported (`start-timing` kind `margin`, `capped`). Default: 5%
   * of `periodMs`, at least `marginMs`, at most 1,000 ms (50 ms for a 1 s window).
   */
  readonly maxMarginMs?: number;
  /**
   * The most a reserve places slots ahead of the store's now. Each worker places them as far ahead
   * as its answers take to arrive (measured, with room to spare), so a slot is known before it is
   * due; this caps that. Default: 10% of `periodMs`, between 20 and 1,000 ms (100 ms for 1 s).
   */
  readonly maxLeadMs?: number;
  /**
   * Further limits on the same work, checked by the store in the same atomic step as this one: a
   * unit starts only where every one has room, at one slot (for example 400 per second and 50,000
   * per day, each its own `key`). They count what this limit counts (`per`) and share its start
   * timing (margin, lead); other pipelines may use their keys alone.
   */
  readonly also?: readonly AlsoRateLimit[];
}

/** A further limit of a pipeline (see `PipelineRateLimit.also`). */
export interface AlsoRateLimit {
  /** Its own key, shared with any pipeline (on any node) that names it. */
  readonly key: string;
  readonly allowed: number;
  readonly periodMs: number;
}

/** The margin the store's window carries for a limit (see `marginMs`). */
export function rateMargin(limit: PipelineRateLimit): number {
  const margin = limit.marginMs ?? Math.min(20, Math.max(4, Math.round(limit.periodMs * 0.01)));
  if (!(margin >= 4) || !Number.isFinite(margin)) {
    throw new InvalidArgumentError(`rateLimit.marginMs must be ≥ 4, got ${margin}`);
  }
  return margin;
}

/** The most a limit's margin grows to (see `maxMarginMs`). */
export function maxRateMargin(limit: PipelineRateLimit): number {
  const floor = rateMargin(limit);
  const cap = limit.maxMarginMs ?? Math.min(1000, Math.max(floor, Math.round(limit.periodMs * 0.05)));
  if (!(cap >= floor) || !Number.isFinite(cap)) {
    throw new InvalidArgumentError(`rateLimit.maxMarginMs must be ≥ marginMs (${floor}), got ${cap}`);
  }
  return cap;
}

/** The most a limited pipeline places slots ahead of the store's now (see `maxLeadMs`). */
export function maxSlotLead(limit: PipelineRateLimit): number {
  const lead = limit.maxLeadMs ?? Math.min(1000, Math.max(20, Math.round(limit.periodMs * 0.1)));
  if (!(lead >= 1) || !Number.isFinite(lead)) {
    throw new InvalidArgumentError(`rateLimit.maxLeadMs must be ≥ 1, got ${lead}`);
  }
  return lead;
}

/** The smallest lead: a few milliseconds, or the cap if that is smaller. */
const MIN_LEAD_MS = 5;

/**
 * The limit the store enforces for a pipeline's configured limit: the window widened by the margin,
 * `jobsPerCall` jobs per unit when it counts calls.
 */
export function storeLimit(limit: PipelineRateLimit, queue: string, jobsPerCall: number): RateLimitSpec {
  const per = limit.per ?? 'job';
  const margin = rateMargin(limit);
  const key = limit.key ?? queue;
  const keys = new Set([key]);
  const also = (limit.also ?? []).map((l): RateLimitSpec => {
    if (typeof l.key !== 'string' || l.key.length === 0 || keys.has(l.key)) {
      throw new InvalidArgumentError(
        `rateLimit.also: each further limit needs a key of its own (not ${JSON.stringify(l.key)})`,
      );
    }
    keys.add(l.key);
    if (!Number.isInteger(l.allowed) || l.allowed < 1 || !(l.periodMs > 0)) {
      throw new InvalidArgumentError(
        `rateLimit.also "${l.key}": allowed must be an integer ≥ 1 and periodMs > 0, got ${l.allowed} / ${l.periodMs}`,
      );
    }
    return {
      key: l.key,
      allowed: l.allowed,
      periodMs: l.periodMs + margin,
      per,
      jobsPerCall: per === 'call' ? jobsPerCall : 1,
      marginMs: margin,
    };
  });
  return {
    key,
    allowed: limit.allowed,
    periodMs: limit.periodMs + margin,
    per,
    jobsPerCall: per === 'call' ? jobsPerCall : 1,
    marginMs: margin,
    ...(also.length > 0 ? { also } : {}),
  };
}

/** The same store limit (and its further limits) with another margin in their windows. */
export function withMargin(limit: RateLimitSpec, margin: number): RateLimitSpec {
  const widen = (l: RateLimitSpec): RateLimitSpec => ({
    ...l,
    periodMs: l.periodMs - (l.marginMs ?? 0) + margin,
    marginMs: margin,
  });
  return limit.also ? { ...widen(limit), also: limit.also.map(widen) } : widen(limit);
}

/**
 * Jobs a limit grants ahead of their slots at the usual lead: they hold no handler slot while they
 * wait but are in flight, so a pipeline's budget covers them.
 */
export function leadSlots(limit: PipelineRateLimit, jobsPerCall: number): number {
  const perUnit = (limit.per ?? 'job') === 'call' ? jobsPerCall : 1;
  const ahead = 2 * Math.min(maxSlotLead(limit), 2 * MIN_LEAD_MS);
  return Math.ceil((limit.allowed * perUnit * ahead) / limit.periodMs);
}

/** Configuration of {@link timeStarts}. */
export interface TimeStartsConfig {
  /** The store that granted the reservations (it reads its clock and moves late units). */
  readonly store: Store;
  readonly queue: string;
  /** The pipeline's rate limit. One of `limit` and `groupLimit` is needed. */
  readonly limit?: PipelineRateLimit;
  /**
   * A rate limit per group (`GroupRules.rateLimit`, its window as configured): units of jobs whose
   * grant names their group (`LimitGrant.groups`) count in their group's log too, and a move moves
   * them there with the pipeline's. Without `limit`, its numbers set the margin and lead (defaults
   * of `PipelineRateLimit`), and units of jobs of no group start at once.
   */
  readonly groupLimit?: GroupRateLimit;
  /** Jobs per handler call when the limit counts calls. Default `1`. */
  readonly jobsPerCall?: number;
  /** Store-clock readings before the first reservation is taken. Default `5`. */
  readonly clockReadings?: number;
  /** Clock and timers. Default `asyncScheduler` (read to a fraction of a millisecond). */
  readonly scheduler?: SchedulerLike;
  /** Told of every start, move and hand-back (telemetry). */
  readonly observer?: StartObserver;
}

/** What {@link timeStarts} reports, for telemetry. */
export interface StartObserver {
  /**
   * A unit whose slot had come waited `ms` for a free handler before the gate was asked (0: one was
   * free). Units of grants regrouped into batches are not told.
   */
  waited?(ms: number): void;
  /** A unit started `lateMs` after the earliest moment it surely could (0 when right on time). */
  started?(lateMs: number): void;
  /** A unit missed its margin (by `lateMs`) and is moved to a new slot. */
  moved?(lateMs: number): void;
  /** A unit could not be placed and goes back to the queue. */
  handedBack?(reason: string): void;
  /** The pipeline's limits got back the `units` of a unit handed back at its slot (see `refund`). */
  refunded?(units: number): void;
  /** The lead now used for new slots. */
  lead?(leadMs: number, capped: boolean): void;
  /** The limit is paused for `ms` (a provider refused, here or in another process). */
  paused?(ms: number, here: boolean): void;
  /** A handler's request left `lateMs` after its slot (at most; `ctx.limit.sent()`). */
  sent?(lateMs: number): void;
  /**
   * Requests left later than the margin after their slot: their `units` are moved in the store's
   * log to when they left (`movedMs` later, or more where the log had no room; `-1`: the store could
   * not be reached or cannot move units).
   */
  corrected?(lateMs: number, units: number, movedMs: number): void;
  /** The margin now asked of the store (`capped`: what was observed wants more than the cap). */
  margin?(marginMs: number, capped: boolean): void;
}

/** Moves of one unit before it is handed back instead (only a badly overloaded worker gets there). */
const MAX_MOVES = 8;
/** Extra store-clock readings a unit may ask for when the clock is known too poorly to place it. */
const MAX_CLOCK_READS = 3;

/**
 * Times the handler starts of a rate-limited pipeline so that they hold the limit by start time, on
 * every worker, as a provider sees them.
 *
 * Intuition: the store records each unit of the limit at a slot (a store time, at or a little ahead
 * of its now) and counts windows a margin wider than the limit's. If every handler starts at its
 * slot, or at most the margin after it, on the store's clock, no window of the limit's length can
 * hold more starts than allowed: more would need their slots inside one window of the store's width.
 * So a unit waits (holding no handler slot) until its slot has surely come on this process's clock;
 * once a handler slot is free, the gate checks the clock again in the same turn as the handler call,
 * and once more when the call's context is made, just before the handler runs (`StartGate`'s
 * `confirm`); a unit it finds past its margin (a stalled event loop, a busy handler slot, a
 * collection between the two readings) is moved to a new slot in the store first, or handed back.
 * No path starts a unit outside its margin.
 *
 * ```
 * slots (store):   a-b-c------          lead 3 frames: each reserve places its slots 3 ahead
 * timeStarts:      ---a-b-c---          (each reservation waits for its slot on the local clock)
 * ```
 *
 * - The clock: each reserve's round trip (and, before the first reserve, `clockReadings` reads of
 *   the store's clock) bounds the offset between the two clocks (`LeaseClock`); a unit starts only
 *   when the bounds put now within `[slot, slot + margin − 2 ms]` (2 ms are kept for the moment
 *   between the check and a handler that reads a whole-millisecond clock), `margin` being the one
 *   the store counted the unit with (`LimitGrant.marginMs`: what its reserve or move asked for, at
 *   least `marginMs`). The store keeps the widest margin any caller asked for over 10 s plus the window, so every
 *   unit placed after one of those starts is counted with a window at least as wide.
 * - Units whose slots have come wait for a free handler; the gate tells how long
 *   (`StartObserver.waited`), and the worker grants fewer jobs ahead while they wait past half the
 *   margin (`GrantsAhead`).
 * - The lead: how far ahead the store places slots follows the answers' measured round trips (with
 *   room to spare), between 5 ms and `maxLeadMs`, so a slot is known before it comes.
 * - A late unit is moved (`store.rebaseLimit`) to the first slot a lead ahead of the store's now
 *   with room for it, then waits for that slot; after 8 moves, or if the store cannot be reached,
 *   it is handed back (the jobs go back to the queue, no attempt spent).
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
 * late would miss reservations): `warmUp()` first, then `align()` where the reservations pass. The
 * source reads `now` for its grants' local times and `leadMs()`/`aheadMs()` for where to place slots.
 */
export interface StartTimer {
  /** Reads the store's clock `clockReadings` times, best effort; emits nothing. */
  warmUp(): Observable<never>;
  /** Delays each reservation until its slot has come and puts the gate on it. */
  align<T>(): OperatorFunction<Reservation<T>, Reservation<T>>;
  /** The local clock of this run's grants and starts (sub-millisecond on the wall clock). */
  readonly now: () => number;
  /** The earliest a new slot may be, in ms after the store's now. */
  leadMs(): number;
  /** The latest a new slot may be, in ms after the store's now. */
  aheadMs(): number;
  /** The margin this worker needs the store to count windows with (see `maxMarginMs`). */
  marginMs(): number;
  /**
   * Pauses the limit for `ms` in the store (a provider refused a call): no unit starts before then,
   * here or in any process sharing the limit. Best effort; a pause already in force that long is
   * not asked again.
   */
  pause(ms: number): void;
}

/** Checks a {@link TimeStartsConfig} and returns a maker of fresh start timers (one per run). */
export function startTiming(config: TimeStartsConfig): () => StartTimer {
  const { store, queue, groupLimit } = config;
  const limit = timingLimit(config);
  const jobsPerCall = config.jobsPerCall ?? 1;
  const spec = config.limit ? storeLimit(config.limit, queue, jobsPerCall) : undefined;
  const margin = rateMargin(limit);
  const maxMargin = maxRateMargin(limit);
  const maxLead = maxSlotLead(limit);
  const readings = config.clockReadings ?? 5;
  return () => {
    const scheduler = config.scheduler ?? asyncScheduler;
    const timing = new StartTiming({
      store,
      queue,
      spec,
      groupLimit,
      per: limit.per ?? 'job',
      margin,
      maxMargin,
      maxLead,
      scheduler,
      observer: config.observer,
    });
    return {
      now: timing.now,
      pause: (ms) => {
        timing.pause(ms);
      },
      leadMs: () => timing.lead,
      aheadMs: () => timing.lead + Math.max(timing.lead, MIN_LEAD_MS),
      marginMs: () => timing.margin,
      warmUp: () => {
        if (!store.storeTime || readings <= 0) return EMPTY;
        // Before the first reserve, a few readings of the store's clock: a cold process's first
        // answers are slow and would teach the clock little.
        const reading = timing.readClock();
        return concat(...Array.from({ length: readings }, () => reading)).pipe(
          ignoreElements(),
          catchError(() => EMPTY), // best effort: reserves teach the clock too
        );
      },
      align:
        <T>() =>
        (reservations$: Observable<Reservation<T>>) =>
          defer(() => {
            // Pauses from other processes, heard for as long as reservations flow (not longer: a
            // drained pipeline completes).
            const pauses = timing.listenForPauses().subscribe();
            return reservations$.pipe(
              mergeMap((r) => {
                const gated: Reservation<T> = { ...r, gate: timing };
                const grant = r.grant;
                if (!grant || r.jobs.length === 0) return of(gated);
                const wait = timing.arrived(grant) - timing.now();
                const ready = (): Reservation<T> => {
                  timing.ready(grant);
                  return gated;
                };
                return wait > 0 ? timer(wait, scheduler).pipe(map(ready)) : of(gated).pipe(map(ready));
              }),
              finalize(() => {
                pauses.unsubscribe();
              }),
            );
          }),
    };
  };
}

/**
 * The limit whose numbers time the starts (margin, lead): the pipeline's, else its group limit's.
 */
export function timingLimit(config: {
  readonly limit?: PipelineRateLimit;
  readonly groupLimit?: GroupRateLimit;
}): PipelineRateLimit {
  if (config.limit) return config.limit;
  const group = config.groupLimit;
  if (!group) throw new InvalidArgumentError('timeStarts needs a rate limit or a group rate limit');
  return { allowed: group.allowed, periodMs: group.periodMs, marginMs: groupRateMargin(group) };
}

/** The smallest margin of a group rate limit that times starts alone (see `GroupRateLimit.marginMs`). */
export function groupRateMargin(group: GroupRateLimit): number {
  const margin = group.marginMs ?? Math.min(30, Math.max(4, Math.round(group.periodMs * 0.015)));
  if (!(margin >= 4) || !Number.isFinite(margin)) {
    throw new InvalidArgumentError(`groups.rateLimit.marginMs must be ≥ 4, got ${margin}`);
  }
  return margin;
}

interface TimingConfig {
  readonly store: Store;
  readonly queue: string;
  /** The pipeline's limit as the store counts it, if it has one. */
  readonly spec: RateLimitSpec | undefined;
  /** Its rate limit per group, if any (window as configured). */
  readonly groupLimit: GroupRateLimit | undefined;
  readonly per: 'job' | 'call';
  /** The smallest margin (`marginMs`): the gate lets starts run up to this long (less 2 ms) after their slots. */
  readonly margin: number;
  readonly maxMargin: number;
  readonly maxLead: number;
  readonly scheduler: SchedulerLike;
  readonly observer: StartObserver | undefined;
}

/**
 * The start timing of one pipeline run: its clock mapping, its lead, moves and hand-backs.
 */
class StartTiming implements StartGate {
  readonly now: () => number;
  readonly clock = new LeaseClock();
  /** How long after its slot (store clock) a start may happen, as this process checks it. */
  readonly window: number;
  /** Where new slots go: this long or more after the store's now. */
  lead: number;
  /**
   * Where a late unit's move puts it: this long or more after the store's now. Learnt from the
   * moves' own answers (a small call, answered long before a reserve's jobs reach the gate), so a
   * move costs its unit a round trip, not the reserve lead (see `learnMove`).
   */
  moveLead: number;
  /** Where a unit moved before goes: as far as the slowest recent move's answer (see `learnMove`). */
  safeMoveLead: number;
  /** The margin asked of the store now: `marginMs`, or more when requests leave late (see `sent`). */
  margin: number;
  /** How late recent requests left against their slots (`ctx.limit.sent()`). */
  private readonly sends = new Recent(256);
  /** Units of requests that left past the margin, by slot, to be moved to when they left (see `sent`). */
  private late = new Map<
    string,
    { slot: number; units: number; lateMs: number; groups: readonly string[] }
  >();
  /** The margin a provider's refusal asked for (see `refused`), and for how many more requests. */
  private boost = 0;
  /** Requests reported since the margin was last fitted to them. */
  private sendsSinceFit = 0;
  private boostLeft = 0;
  /** How long recent answers took to arrive, slowest first in mind (see `learn`). */
  private readonly trips = new Recent(32);
  /** How long recent moves took to be answered (see `learnMove`). */
  private readonly moveTrips = new Recent(32);
  /** When each grant's slot had come and its units went on to find handlers (see `ready`). */
  private readonly readyAt = new WeakMap<LimitGrant, number>();
  /** The reading of the store's clock on its way, if any (see `readClock`). */
  private reading: Observable<number> | undefined;
  /** The reserve call the clock last learnt from (see `arrived`). */
  private lastSentAt = Number.NaN;
  private lastStoreNow = Number.NaN;
  /** Store time until which the limit is paused (a provider refused): no unit of an earlier slot starts. */
  pausedUntil = -Infinity;
  /** Local time until which a pause asked from here covers, so a burst of refusals asks once. */
  private pausingUntil = -Infinity;

  constructor(readonly config: TimingConfig) {
    this.now = stableNow(config.scheduler);
    this.window = config.margin - 2;
    this.margin = config.margin;
    this.lead = Math.min(MIN_LEAD_MS, config.maxLead);
    this.moveLead = this.lead;
    this.safeMoveLead = this.lead;
  }

  /** The limit as the store counts it with this worker's margin now (none: group limits only). */
  spec(): RateLimitSpec | undefined {
    return this.config.spec && withMargin(this.config.spec, this.margin);
  }

  /**
   * What a move of a unit acts on: the pipeline's limits and the logs of `groups` (as further
   * limits, with this worker's margin), or undefined when the unit counts in no log.
   */
  moveSpec(groups: readonly string[]): RateLimitSpec | undefined {
    const base = this.spec();
    const limit = this.config.groupLimit;
    const own =
      limit === undefined
        ? []
        : groups.map((group): RateLimitSpec => ({
            key: group,
            group,
            allowed: limit.allowed,
            periodMs: limit.periodMs + this.margin,
            marginMs: this.margin,
          }));
    if (own.length === 0) return base;
    if (base) return { ...base, also: [...(base.also ?? []), ...own] };
    const [first, ...rest] = own as [RateLimitSpec, ...RateLimitSpec[]];
    return rest.length > 0 ? { ...first, also: rest } : first;
  }

  /**
   * A handler's request for the `units` at `slot` left now: at most `now − (the earliest local time
   * the slot could have come)` after it. Later than the gate's window (`marginMs − 2`): the units
   * are moved in the store's log to when the request left (see `correct`). The margin keeps above
   * how late 9 in 10 of the last 256 left, plus 2 ms, between `marginMs` and `maxMarginMs`: every
   * unit pays the margin, a moved one only its own lateness, so the margin covers most requests and
   * the moves the rest.
   */
  sent(slot: number, units: number, groups: readonly string[] = [], window = this.window): void {
    const late = Math.max(0, this.now() - this.clock.bounds(slot)[0]);
    this.config.observer?.sent?.(late);
    this.sends.add(late);
    const boostEnded = this.boostLeft > 0 && --this.boostLeft === 0;
    if (late > window) this.correct(slot, units, late, groups);
    // The quantile moves little from one request to the next: it is read again every 16.
    if (++this.sendsSinceFit >= 16 || boostEnded) this.fitMargin();
  }

  /**
   * Moves the units of late requests from their slots to when the requests left: the store's log
   * then counts them where the provider does. A request leaves `late` after its slot, so at store
   * time `slot + late` at the latest, before the call reaches the store; the store records them at
   * its now, or at the first time after it with room. Exact as long as no slot a window after the
   * old one has been granted yet: the move comes a round trip after the request, a window is a
   * period plus the margin. Units counted in group logs (`groups`) move there too. Late requests
   * of one turn go together, one call per slot and set of groups.
   */
  private correct(slot: number, units: number, lateMs: number, groups: readonly string[]): void {
    if (!this.config.spec && groups.length === 0) return; // counted in no log
    const key = groups.length === 0 ? String(slot) : `${slot}\u0000${groups.join('\u0000')}`;
    const queued = this.late.get(key);
    if (queued) {
      queued.units += units;
      queued.lateMs = Math.max(queued.lateMs, lateMs);
      return;
    }
    this.late.set(key, { slot, units, lateMs, groups });
    if (this.late.size > 1) return;
    this.config.scheduler.schedule(() => {
      const late = this.late;
      this.late = new Map();
      for (const { slot: from, units: n, lateMs: ms, groups: of } of late.values()) {
        const moved$ = this.rebase(n, from, 0, of);
        if (!moved$) {
          this.config.observer?.corrected?.(ms, n, -1);
          continue;
        }
        moved$.subscribe({
          next: (r) => this.config.observer?.corrected?.(ms, n, r.at - from),
          error: () => this.config.observer?.corrected?.(ms, n, -1),
        });
      }
    });
  }

  /**
   * A provider refused a call although the limit held by start and send: its arrivals are spread
   * wider than the requests were (the network, the provider's own queue). The margin doubles (up to
   * its cap) for the next 256 requests that report when they left.
   */
  refused(): void {
    this.boost = 2 * this.margin;
    this.boostLeft = 256;
    this.fitMargin();
  }

  /** The margin: above 9 in 10 recent requests, or a refusal's boost, from `marginMs` to the cap. */
  private fitMargin(): void {
    const { observer, margin: floor, maxMargin } = this.config;
    this.sendsSinceFit = 0;
    const want = Math.max(Math.ceil(this.sends.quantile(0.9)) + 2, this.boostLeft > 0 ? this.boost : 0);
    const margin = Math.min(maxMargin, Math.max(floor, want));
    if (margin !== this.margin) {
      this.margin = margin;
      observer?.margin?.(margin, want > maxMargin);
    }
  }

  /**
   * A reservation reached the stage: the clock learns from its call, the lead from its round trip.
   * Returns the local time from which its slot has surely come.
   */
  arrived(grant: LimitGrant): number {
    // The reservations of one reserve call (one per slot) share its times: learn from it once.
    if (grant.sentAt !== this.lastSentAt || grant.storeNow !== this.lastStoreNow) {
      this.lastSentAt = grant.sentAt;
      this.lastStoreNow = grant.storeNow;
      this.clock.observe(grant.sentAt, grant.receivedAt, grant.storeNow);
      this.learn(this.now() - grant.sentAt);
    }
    return this.clock.bounds(grant.at)[1];
  }

  /** The slot of `grant` has come: its units go on to find handlers from now (see `waited`). */
  ready(grant: LimitGrant): void {
    if (this.config.observer?.waited) this.readyAt.set(grant, this.now());
  }

  /**
   * The lead keeps above the slowest recent answer by half again plus a millisecond, between 5 ms
   * and the cap: an answer slower than the lead arrives after its slot has come, and its units are
   * late from the start.
   */
  learn(tripMs: number): void {
    if (!(tripMs >= 0)) return;
    this.trips.add(tripMs);
    const { maxLead } = this.config;
    const want = Math.ceil(this.trips.max() * 1.5) + 1;
    const lead = Math.min(maxLead, Math.max(MIN_LEAD_MS, want));
    if (lead !== this.lead) {
      this.lead = lead;
      this.config.observer?.lead?.(lead, want > maxLead);
    }
  }

  /**
   * Gives the pipeline's limits back the `units` of a unit handed back at `slot`, where the store
   * recorded them and no work started (best effort: a call that fails leaves them to expire). Its
   * groups' logs get theirs back with the job's settlement (`UnusedUnits`).
   */
  refund(units: number, slot: number): void {
    const { store, queue, observer } = this.config;
    const spec = this.spec();
    if (!spec || !store.refundLimit) return;
    store.refundLimit(queue, spec, slot, units).subscribe({
      complete: () => observer?.refunded?.(units),
      error: () => undefined,
    });
  }

  /** See {@link StartTimer.pause}. */
  pause(ms: number): void {
    const { store, queue, observer } = this.config;
    const spec = this.spec();
    const now = this.now();
    if (!spec || !store.pauseLimit || now + ms <= this.pausingUntil) return;
    this.pausingUntil = now + ms;
    this.refused();
    const pauseLimit = store.pauseLimit.bind(store);
    observer?.paused?.(ms, true);
    this.timed(
      () => pauseLimit(queue, spec, ms),
      (r) => r.now,
    ).subscribe({
      next: (r) => {
        this.pausedUntil = Math.max(this.pausedUntil, r.until);
      },
      error: () => undefined, // best effort: the job was snoozed for as long anyway
    });
  }

  /** Pauses announced by any process sharing the limit; emits nothing. */
  listenForPauses(): Observable<never> {
    const { store, queue, spec, observer } = this.config;
    if (!spec || !store.limitPauses) return EMPTY;
    return store.limitPauses(queue, spec).pipe(
      tap((until) => {
        if (until <= this.pausedUntil) return;
        this.pausedUntil = until;
        observer?.paused?.(Math.max(0, until - this.clock.toStore(this.now())), false);
      }),
      ignoreElements(),
      catchError(() => EMPTY),
    );
  }

  /**
   * One reading of the store's clock (one more round trip for the clock). Units that ask while a
   * reading is on its way share it: after a clock step, or on a machine too loaded to answer
   * quickly, every waiting unit needs one at once.
   */
  readClock(): Observable<number> {
    const storeTime = this.config.store.storeTime?.bind(this.config.store);
    if (!storeTime) return EMPTY;
    return (this.reading ??= this.timed(
      () => storeTime(this.config.queue),
      (at) => at,
    ).pipe(
      finalize(() => {
        this.reading = undefined;
      }),
      share(),
    ));
  }

  /**
   * A store call whose answer carries the store's time: the clock learns from it, and the lead (or,
   * for a move, the move lead) from its round trip.
   */
  timed<V>(call: () => Observable<V>, storeAt: (answer: V) => number, move = false): Observable<V> {
    return defer(() => {
      const sentAt = this.now();
      return call().pipe(
        tap((answer) => {
          const receivedAt = this.now();
          this.clock.observe(sentAt, receivedAt, storeAt(answer));
          if (move) this.learnMove(receivedAt - sentAt);
          else this.learn(receivedAt - sentAt);
        }),
      );
    });
  }

  /**
   * The move lead: twice the median of the last 32 moves' answers plus a millisecond (those not
   * seen yet count as quick), at least 5 ms. Not their slowest, as the reserve lead is: a move's
   * unit waits out its lead, so a lead at the slowest answer (an event loop that stalled) would cost
   * every moved unit that long; an answer later than the lead by more than the gate allows (the
   * same stall) moves the unit once more, which costs that unit alone. That second move goes the
   * safe lead ahead: the slowest of those answers by half again plus a millisecond.
   */
  learnMove(tripMs: number): void {
    if (!(tripMs >= 0)) return;
    this.moveTrips.add(tripMs);
    const want = Math.ceil(this.moveTrips.quantile(0.5) * 2) + 1;
    this.moveLead = Math.min(this.config.maxLead, Math.max(MIN_LEAD_MS, want));
    const safe = Math.ceil(this.moveTrips.max() * 1.5) + 1;
    this.safeMoveLead = Math.min(this.config.maxLead, Math.max(MIN_LEAD_MS, safe));
  }

  /**
   * Moves `units` recorded at `from` to a new slot `lead` (default: the lead in use) after the
   * store's now, in the pipeline's limits and the logs of `groups`.
   */
  rebase(
    units: number,
    from: number,
    lead = this.lead,
    groups: readonly string[] = [],
  ): Observable<RebaseResult> | undefined {
    const { store, queue } = this.config;
    const spec = this.moveSpec(groups);
    if (!spec || !store.rebaseLimit) return undefined;
    const rebaseLimit = store.rebaseLimit.bind(store);
    return this.timed(
      () => rebaseLimit(queue, spec, from, units, lead),
      (r) => r.now,
      true,
    );
  }

  /**
   * How long after its slot a unit recorded with `marginMs` may start, as this process checks it:
   * the margin the store counted its window with (never less than the configured one), less the 2 ms
   * kept for a handler's first whole-millisecond reading.
   */
  windowFor(marginMs: number | undefined): number {
    return Math.max(this.config.margin, marginMs ?? this.config.margin) - 2;
  }

  admit(
    jobs: readonly ReservedJob[],
    grant: LimitGrant | undefined,
    start: (limit?: LimitContext, confirm?: () => boolean) => void,
    handBack: (reason: string, unused?: UnusedUnits) => void,
  ): Unsubscribable | undefined {
    const { per, spec, groupLimit } = this.config;
    // The groups whose logs hold this unit (its jobs' groups the grant names).
    const named = grant?.groups;
    const groups = named
      ? [...new Set(jobs.flatMap((j) => (j.group !== undefined && named.includes(j.group) ? [j.group] : [])))]
      : [];
    if (!spec && groups.length === 0) {
      // Counted in no log (a job of no group under group limits only): nothing to time.
      start();
      return undefined;
    }
    // Units of the limit: a call counts once, jobs each (never more than the limit allows).
    const cap = Math.min(
      spec?.allowed ?? Infinity,
      groups.length > 0 ? (groupLimit?.allowed ?? Infinity) : Infinity,
    );
    const units = Math.min(per === 'call' ? 1 : jobs.length, cap);
    const slot = grant?.at ?? jobs[0]?.lease.startedAt ?? 0;
    const readyAt = grant && this.readyAt.get(grant);
    if (readyAt !== undefined) this.config.observer?.waited?.(Math.max(0, this.now() - readyAt));
    const attempt = new GatedStart(
      this,
      units,
      slot,
      this.windowFor(grant?.marginMs),
      grant !== undefined,
      start,
      handBack,
      groups,
    );
    attempt.tryStart();
    return attempt;
  }
}

/** One unit waiting at the gate: its slot (or where a move put it) and its moves so far. */
class GatedStart implements Unsubscribable {
  private sub: Subscription | undefined;
  private closed = false;
  private moves = 0;
  private clockReads = 0;
  private readonly retry = (): void => {
    this.tryStart();
  };

  constructor(
    private readonly timing: StartTiming,
    private readonly units: number,
    private slot: number,
    /**
     * How long after `slot` (store clock) the unit may start: the margin the store counted its
     * window with when it recorded the unit there, less 2 ms (see `StartTiming.windowFor`).
     */
    private window: number,
    /** Whether the store recorded the units at `slot` (a grant's slot, or where a move put them). */
    private recorded: boolean,
    private readonly start: (limit: LimitContext, confirm: () => boolean) => void,
    private readonly handBack: (reason: string, unused?: UnusedUnits) => void,
    private readonly groups: readonly string[],
  ) {}

  unsubscribe(): void {
    this.closed = true;
    this.sub?.unsubscribe();
  }

  tryStart(): void {
    if (this.closed) return;
    const timing = this.timing;
    const [earliest, latest] = timing.clock.bounds(this.slot);
    if (latest - earliest > this.window) {
      // The clock is known too poorly to place a start inside the margin: read it again.
      if (this.clockReads++ < MAX_CLOCK_READS) {
        this.sub = timing.readClock().subscribe({
          complete: this.retry,
          error: () => {
            this.refuse('store unreachable');
          },
        });
      } else {
        this.refuse(`store clock known to ±${((latest - earliest) / 2).toFixed(1)} ms only`);
      }
      return;
    }
    const now = timing.now();
    if (this.slot < timing.pausedUntil) {
      // Paused (a provider refused): this slot falls inside the pause; a new one goes after it.
      this.reslot(now - latest, 'paused');
      return;
    }
    if (now < latest) {
      this.sub = timer(latest - now, timing.config.scheduler).subscribe(this.retry);
      return;
    }
    // Surely at or after the slot; and surely no later than the margin allows?
    const deadline = earliest + this.window;
    if (now <= deadline) {
      this.closed = true;
      const { slot, window } = this;
      let sent = false;
      let lateMs: number | undefined;
      let missedBy: number | undefined;
      this.start(
        {
          slot,
          sent: () => {
            if (sent) return;
            sent = true;
            timing.sent(slot, this.units, this.groups, window);
          },
        },
        // Asked again just before the handler call, once what the call needs is made: a collection
        // or a process not scheduled between the two readings can take longer than the 2 ms kept
        // for the handler's first steps (a loaded machine took 4.3 ms once in some 2,000 starts).
        // Nothing comes between this reading and the call; the report comes after.
        () => {
          const at = timing.now();
          if (at <= deadline) lateMs = at - latest;
          else missedBy = at - latest;
          return lateMs !== undefined;
        },
      );
      if (lateMs !== undefined) timing.config.observer?.started?.(lateMs);
      else if (missedBy !== undefined) {
        // Moved once the caller has put its call away (it calls `start` again from the new slot).
        this.closed = false;
        this.reslot(missedBy, 'late');
      }
      return;
    }
    this.reslot(now - latest, 'late');
  }

  /** Moves the unit to a new slot (late, or inside a pause), or hands it back after too many moves. */
  private reslot(lateMs: number, why: 'late' | 'paused'): void {
    const timing = this.timing;
    if (why === 'late') timing.config.observer?.moved?.(lateMs);
    if (this.moves >= MAX_MOVES) {
      this.refuse(`moved ${this.moves} times and still late`);
      return;
    }
    // A first move goes the usual lead ahead; a unit whose move answered too late (a stall) goes
    // as far as the slowest recent answer, so it is not moved again and again.
    const lead = this.moves === 0 ? timing.moveLead : timing.safeMoveLead;
    // The move counts the unit with the margin asked now.
    const window = timing.windowFor(timing.margin);
    const moved$ = timing.rebase(this.units, this.slot, lead, this.groups);
    if (!moved$) {
      this.refuse('late, and the store cannot move rate-limit units');
      return;
    }
    this.moves++;
    this.sub = moved$.subscribe({
      next: (r) => {
        this.slot = r.at;
        this.window = window;
        this.recorded = true;
        this.tryStart();
      },
      error: () => {
        // The move may have been applied: where the unit is now is not known.
        this.refuse('late, and the store could not be reached to move its unit', false);
      },
    });
  }

  /**
   * Hands the unit back. `atSlot`: its units are surely recorded at `slot` (no move is in doubt),
   * so its groups' logs may give them back (no work started there).
   */
  private refuse(reason: string, atSlot = true): void {
    if (this.closed) return;
    this.closed = true;
    this.timing.config.observer?.handedBack?.(reason);
    // No work started at the slot: the pipeline's limits may use its units again.
    if (atSlot && this.recorded) this.timing.refund(this.units, this.slot);
    this.handBack(
      reason,
      atSlot && this.groups.length > 0 ? { at: this.slot, units: this.units } : undefined,
    );
  }
}

/** The last few values of a measure, for their maximum or a quantile. */
class Recent {
  private readonly values: number[] = [];
  private next = 0;
  constructor(private readonly size: number) {}

  add(value: number): void {
    this.values[this.next] = value;
    this.next = (this.next + 1) % this.size;
  }

  max(): number {
    let max = 0;
    for (const v of this.values) max = Math.max(max, v);
    return max;
  }

  /**
   * The value `q` (0…1) of the way up the last `size`, those not seen yet counted as 0: a few
   * values (a cold process's first requests, each opening a connection) do not make a quantile.
   */
  quantile(q: number): number {
    const index = Math.min(this.size - 1, Math.floor(q * this.size)) - (this.size - this.values.length);
    if (index < 0) return 0;
    const sorted = Float64Array.from(this.values).sort();
    return sorted[index] as number;
  }
}

/**
 * One clock for a run's grants and starts. On the wall clock (the scheduler's time and
 * `performance` agree to within 2 ms), `performance.timeOrigin + performance.now()`, read to a
 * fraction of a millisecond and never stepped; otherwise (virtual time) the scheduler's. Chosen once:
 * a clock that switched between the two mid-run would shift every mapped slot.
 */
export function stableNow(scheduler: { now(): number }): () => number {
  const fine = (): number => performance.timeOrigin + performance.now();
  return Math.abs(fine() - scheduler.now()) < 2 ? fine : () => scheduler.now();
}
