import { asyncScheduler, EMPTY, Observable, type SchedulerLike, type Subscription, timer } from 'rxjs';
import type { Demand } from '../runtime/demand';
import { InvalidArgumentError } from '../model/errors';
import type { Reservation } from '../model/reservation';
import type { ReservedJob } from '../model/job';
import type { InFlight } from '../runtime/in-flight';
import type {
  FillSpec,
  GroupRules,
  Handoff,
  HandoffChannel,
  RateLimitSpec,
  ReserveOptions,
  ReserveResult,
  Store,
} from '../store/store';
import { withMargin } from './time-starts';

export interface IdlePolling {
  /** First sleep after an empty answer. Default `50`. */
  readonly minMs?: number;
  /** Sleeps double after each empty answer up to this. Default `1000`. */
  readonly maxMs?: number;
}

export interface SourceConfig {
  readonly store: Store;
  readonly queue: string;
  /** The request-n channel: the source reserves only what it has taken from here. */
  readonly demand: Demand;
  /** Lease granted with each job. */
  readonly leaseMs: number;
  /** Most jobs per store call. Default `1000`. */
  readonly maxBatch?: number;
  /**
   * Reserve only whole multiples of this many jobs (a batch, when the rate limit counts handler
   * calls, so no call is spent on a partial batch while demand for a full one is on its way).
   * Default `1`.
   */
  readonly multipleOf?: number;
  /** Checked by the store in the same atomic step as the reserve. */
  readonly limit?: RateLimitSpec;
  /**
   * Under a limit: how far ahead of the store's now each reserve places its slots (read before
   * every call; see `ReserveOptions.limitLeadMs`), and with `marginMs`, the margin the limit's
   * window carries now (see `RateLimitSpec.marginMs`). Default: none (slots at the store's now).
   */
  readonly slotLead?: { leadMs(): number; aheadMs(): number; marginMs?(): number };
  /**
   * Under a limit: spread each reserve's slots a millisecond apart (`ReserveOptions.limitSpread`),
   * for a worker that starts each unit at its own slot. Not for batches of per-job units (a batch
   * starts once, at one slot). Default `false`.
   */
  readonly slotSpread?: boolean;
  /** At most this many of the queue's jobs leased at once across every worker (see `ReserveOptions.maxActive`). */
  readonly maxActive?: number;
  /**
   * Rules for the groups of the reserved jobs (see `ReserveOptions.groups`). A group rate limit's
   * `periodMs` is the window as configured: each reserve adds the margin `slotLead.marginMs()`
   * reads (its window then counts like the pipeline limit's), and its grants name the groups whose
   * logs hold their units (`LimitGrant.groups`).
   */
  readonly groups?: GroupRules;
  readonly fill?: FillSpec;
  readonly idle?: IdlePolling;
  /** Signals that jobs were added; cuts an idle sleep short. Default: none (polling only). */
  readonly wakeups?: Observable<unknown>;
  /** While the latest value is `true`, nothing is reserved. Default: never paused. */
  readonly paused?: Observable<boolean>;
  /** Every reservation is added here before it is emitted (heartbeats, cancellations, drains read it). */
  readonly inFlight?: InFlight;
  /** Called when a store call fails; the source backs off and tries again. */
  readonly onError?: (error: unknown) => void;
  /** Clock and timers. Default `asyncScheduler`. */
  readonly scheduler?: SchedulerLike;
  /** The clock a reservation's grant times (`sentAt`, `receivedAt`) are read from. Default: the scheduler's. */
  readonly now?: () => number;
  /**
   * Park the demand a short answer leaves in the store, so that an add hands its jobs over directly
   * (see `ParkSpec`), where the store can (`Store.openHandoffs`) and nothing else decides what a
   * reserve takes (no `limit`, `fill`, `maxActive` or `groups`). Default `true`.
   */
  readonly park?: boolean;
}

/** How long a park outlives the idle sleep after it: the owner parks again before then. */
const PARK_SLACK_MS = 1000;
/** How long a handed-over park's jobs may take to arrive before its demand is given back. */
const HANDOFF_WAIT_MS = 5000;

/**
 * A demand-driven source of reserved jobs: each emission is one {@link Reservation} (the jobs one
 * store call leased, with its grant: the store time they were counted and the call's local times).
 *
 * Intuition: it asks the store for exactly what the consumers have room for and no more. It calls the
 * store only while demand is positive, and each call reserves at most `min(demand, maxBatch)`.
 *
 * ```
 * demand:  10 ──────────► 0 ············· +4 ──► 0
 * store:   reserve(10)→[10]                reserve(4)→[3] (short: queue drained → sleep)
 * source:  -a----------------------------------b--------
 * ```
 *
 * After a full answer it reserves again at once (if demand remains). A short or empty answer means
 * the queue is drained: it sleeps — first `idle.minMs`, doubling to `idle.maxMs`, or until the next
 * scheduled job is due — and a wake-up signal cuts the sleep short. When the store reports a rate
 * limit it sleeps exactly `retryAfterMs` and no wake-up cuts that short, so a limited pipeline makes
 * no store calls until the limit frees a slot. A paused queue is not polled until resumed. A failing
 * store call gives its demand back and is retried after a backoff.
 *
 * Parking (`park`, where the store can): the demand a short answer leaves stays in the store while
 * the source sleeps, and the next add leases its jobs to it and sends them straight over the
 * park's channel (emitted like a reserve's), taking them off the park. The park's demand is held,
 * not given back, until its jobs arrive or the next reserve (or a drain, a pause) takes back what
 * is left of it.
 *
 * The source completes when the demand channel is cancelled (a drain) and no call is in flight.
 *
 * ## Example
 * ```ts
 * const demand = new Demand({ initial: 20 });
 * source({ store, queue: 'emails', demand, leaseMs: 30_000 }).subscribe((jobs) => console.log(jobs.length));
 * ```
 */
export function source<T = unknown>(config: SourceConfig): Observable<Reservation<T>> {
  const multipleOf = config.multipleOf ?? 1;
  const requestedMaxBatch = config.maxBatch ?? 1000;
  if (!Number.isInteger(requestedMaxBatch) || requestedMaxBatch < 1) {
    throw new InvalidArgumentError(`maxBatch must be an integer ≥ 1, got ${requestedMaxBatch}`);
  }
  if (!Number.isInteger(multipleOf) || multipleOf < 1) {
    throw new InvalidArgumentError(`multipleOf must be an integer ≥ 1, got ${multipleOf}`);
  }
  const maxBatch = Math.max(requestedMaxBatch, multipleOf);
  const minIdle = config.idle?.minMs ?? 50;
  const maxIdle = Math.max(minIdle, config.idle?.maxMs ?? 1000);
  if (!(minIdle >= 1) || !Number.isFinite(maxIdle)) {
    throw new InvalidArgumentError(
      `idle.minMs must be ≥ 1 and idle.maxMs finite, got ${minIdle} and ${maxIdle}`,
    );
  }
  if (!(config.leaseMs > 0)) throw new InvalidArgumentError(`leaseMs must be > 0, got ${config.leaseMs}`);

  return new Observable<Reservation<T>>((subscriber) => {
    const { store, queue, demand } = config;
    const scheduler = config.scheduler ?? asyncScheduler;
    const now = config.now ?? (() => scheduler.now());
    const baseOptions: ReserveOptions = {
      leaseMs: config.leaseMs,
      ...(config.limit ? { limit: config.limit } : {}),
      ...(config.fill ? { fill: config.fill } : {}),
      ...(config.maxActive !== undefined ? { maxActive: config.maxActive } : {}),
      ...(config.groups ? { groups: config.groups } : {}),
    };
    const groupLimit = config.groups?.rateLimit;
    const slotLead = config.limit || groupLimit ? config.slotLead : undefined;
    const groupsWithMargin = (margin: number): GroupRules => ({
      ...config.groups,
      ...(groupLimit
        ? {
            rateLimit: {
              allowed: groupLimit.allowed,
              periodMs: groupLimit.periodMs + margin,
              marginMs: margin,
            },
          }
        : {}),
    });
    const reserveOptions = (): ReserveOptions =>
      slotLead
        ? {
            ...baseOptions,
            ...(config.limit && slotLead.marginMs
              ? { limit: withMargin(config.limit, slotLead.marginMs()) }
              : {}),
            ...(groupLimit && slotLead.marginMs ? { groups: groupsWithMargin(slotLead.marginMs()) } : {}),
            limitLeadMs: slotLead.leadMs(),
            limitAheadMs: slotLead.aheadMs(),
            ...(config.slotSpread ? { limitSpread: true } : {}),
          }
        : baseOptions;
    // Under a group limit, the groups whose logs hold a slot's jobs.
    const groupsOf = (jobs: readonly ReservedJob<T>[]): { groups?: readonly string[] } => {
      if (!groupLimit) return {};
      const groups = [...new Set(jobs.flatMap((j) => (j.group === undefined ? [] : [j.group])))];
      return groups.length > 0 ? { groups } : {};
    };

    // Parking: the channel (once subscribed), the park the store holds for us, and parks the store
    // handed over whose jobs have not arrived yet (their demand is still held).
    const parking =
      config.park !== false &&
      store.openHandoffs !== undefined &&
      !config.limit &&
      !config.fill &&
      config.maxActive === undefined &&
      !config.groups;
    let channel: HandoffChannel<T> | undefined;
    let channelReady = false;
    let parkSeq = 0;
    // `held`: the park's demand not yet arrived as jobs.
    let park: { seq: number; held: number } | undefined;
    let cancelling: { seq: number; held: number } | undefined; // being taken back by a reserve
    const awaiting = new Map<number, { held: number; timeout: Subscription }>();
    let early: Handoff<T>[] = []; // arrived before the reserve that parked them answered
    const parkTtlMs = (): number => maxIdle + PARK_SLACK_MS;

    let busy = false; // a reserve call is in flight
    let paused = false;
    let sleep: Subscription | undefined;
    let sleepIsHard = false; // rate-limit sleeps ignore wake-ups
    let idleMs = minIdle;
    let errorMs = minIdle;
    let pendingCall: Subscription | undefined;

    const finishIfDrained = (): boolean => {
      if (demand.isCancelled && !busy) {
        if (park) {
          unpark();
          return false;
        }
        if (awaiting.size > 0) return false;
        sleep?.unsubscribe();
        subscriber.complete();
        return true;
      }
      return false;
    };

    // The jobs of a park, leased by an add: emitted like a reserve's (the demand of rejected ones
    // back); answers how much of the park they took.
    const emitHandoff = (handoff: Handoff<T>): number => {
      const jobs = handoff.jobs;
      const rejected = handoff.rejected.length;
      if (rejected > 0) demand.giveBack(rejected);
      const first = jobs[0];
      if (first && !subscriber.closed) {
        idleMs = minIdle;
        config.inFlight?.add(jobs);
        const at = now();
        const storeNow = first.lease.startedAt;
        subscriber.next({ jobs, grant: { at: storeNow, storeNow, sentAt: at, receivedAt: at } });
      }
      return jobs.length + rejected;
    };
    const onHandoff = (handoff: Handoff<T>): void => {
      const seq = handoff.seq;
      const waiting = awaiting.get(seq);
      if (park?.seq === seq) {
        const current = park;
        current.held -= emitHandoff(handoff);
        if (current.held <= 0 && park === current) {
          park = undefined; // the store deleted it: park again (or reserve what came meanwhile)
          wake();
        }
      } else if (cancelling?.seq === seq) {
        cancelling.held -= emitHandoff(handoff);
      } else if (waiting) {
        waiting.held -= emitHandoff(handoff);
        if (waiting.held <= 0) {
          awaiting.delete(seq);
          waiting.timeout.unsubscribe();
          finishIfDrained();
        }
      } else if (busy && seq === parkSeq) {
        early.push(handoff);
      } else {
        // No demand held for it (a park whose reserve failed): lease recovery returns its jobs.
        config.onError?.(new Error(`handoff of an unknown park (${seq}): left to lease recovery`));
      }
    };
    // Jobs the store handed to a park we no longer hold are on their way; their demand is held until
    // they arrive.
    const awaitHandoff = (seq: number, held: number): void => {
      const timeout = timer(HANDOFF_WAIT_MS, scheduler).subscribe(() => {
        awaiting.delete(seq);
        demand.giveBack(held);
        config.onError?.(new Error(`handoff ${seq} did not arrive: its jobs are left to lease recovery`));
        pump();
      });
      awaiting.set(seq, { held, timeout });
    };
    // Takes the park back without reserving (a drain, a pause).
    const unpark = (): void => {
      if (!park || busy || !channel) return;
      const { seq, held } = park;
      park = undefined;
      busy = true;
      channel.unpark(seq).then(
        (left) => {
          enter(() => {
            busy = false;
            demand.giveBack(Math.min(left, held));
            if (held > left) awaitHandoff(seq, held - left);
            finishIfDrained();
          });
        },
        () => {
          enter(() => {
            busy = false;
            awaitHandoff(seq, held);
            finishIfDrained();
          });
        },
      );
    };

    const sleepFor = (ms: number, hard: boolean): void => {
      sleep?.unsubscribe();
      sleepIsHard = hard;
      // On a synchronous scheduler a 0 ms timer fires inside subscribe(), before `self.sub` is set.
      const self: { sub?: Subscription; fired: boolean } = { fired: false };
      self.sub = timer(Math.max(0, ms), scheduler).subscribe(() => {
        self.fired = true;
        if (sleep !== undefined && sleep === self.sub) sleep = undefined;
        pump();
      });
      sleep = self.fired ? undefined : self.sub;
    };

    // A wake-up during a reserve call: jobs may have been added after the store looked.
    let wokenWhileBusy = false;
    const wake = (): void => {
      idleMs = minIdle;
      if (busy) wokenWhileBusy = true;
      if (sleep && !sleepIsHard) {
        sleep.unsubscribe();
        sleep = undefined;
        pump();
      }
    };

    const onResult = (
      taken: number,
      result: ReserveResult<T>,
      requestedAt: number,
      marginMs?: number,
    ): void => {
      // Still busy while its reservations are emitted: a drain they trigger must not complete the
      // source before the last of them is out.
      let woken = wokenWhileBusy;
      wokenWhileBusy = false;
      errorMs = minIdle;
      const got = result.jobs.length;
      const parked = result.park?.parked ?? 0;
      // What was left of the earlier park was taken back into this call: its demand counts as taken.
      const reclaimed = Math.min(result.park?.reclaimed ?? 0, cancelling?.held ?? 0);
      const asked = taken + reclaimed;
      if (got + parked < asked) demand.giveBack(asked - got - parked);
      // A park used up before this answer came: reserve again at once rather than sleep.
      if (settlePark(reclaimed, parked)) woken = true;
      const first = result.jobs[0];
      if (first) {
        idleMs = minIdle;
        config.inFlight?.add(result.jobs);
        const storeNow = result.storeNow ?? first.lease.startedAt;
        const receivedAt = now();
        const margin = marginMs === undefined ? {} : { marginMs };
        const slots = result.slots;
        if (!slots || slots.length <= 1) {
          const at = slots?.[0]?.at ?? storeNow;
          subscriber.next({
            jobs: result.jobs,
            grant: { at, storeNow, sentAt: requestedAt, receivedAt, ...margin, ...groupsOf(result.jobs) },
          });
        } else {
          // One reservation per slot: its jobs start at their slot's time.
          let from = 0;
          for (const slot of slots) {
            if (subscriber.closed) break;
            const jobs = result.jobs.slice(from, from + slot.jobs);
            from += slot.jobs;
            if (jobs.length > 0) {
              subscriber.next({
                jobs,
                grant: {
                  at: slot.at,
                  storeNow,
                  sentAt: requestedAt,
                  receivedAt,
                  ...margin,
                  ...groupsOf(jobs),
                },
              });
            }
          }
        }
      }
      busy = false;
      if (finishIfDrained()) return;
      if (result.paused) {
        sleepFor(maxIdle, false);
      } else if (result.retryAfterMs !== undefined) {
        sleepFor(result.retryAfterMs, true);
      } else if (got < asked && !woken) {
        const idle = got === 0 ? idleMs : minIdle;
        if (got === 0) idleMs = Math.min(maxIdle, idleMs * 2);
        sleepFor(Math.min(idle, result.nextCheckInMs ?? Infinity), false);
      }
      // Paused while this call was in flight: a park it made must not take jobs meanwhile.
      if (paused) unpark();
    };

    // After a reserve that named parks: the earlier one's jobs still on their way, and the new park
    // (with the jobs it was handed before this answer came). True if it is used up already.
    const settlePark = (reclaimed: number, parked: number): boolean => {
      const was = cancelling;
      cancelling = undefined;
      if (was && was.held > reclaimed) awaitHandoff(was.seq, was.held - reclaimed);
      const arrived = early;
      early = [];
      if (parked <= 0) return false;
      const current = { seq: parkSeq, held: parked };
      park = current;
      for (const handoff of arrived) if (handoff.seq === current.seq) current.held -= emitHandoff(handoff);
      if (current.held > 0) return false;
      park = undefined;
      return true;
    };

    const onFailure = (taken: number, error: unknown): void => {
      busy = false;
      demand.giveBack(taken);
      // Whether the earlier park was taken back is unknown: wait for its jobs a while.
      if (cancelling && cancelling.held > 0) awaitHandoff(cancelling.seq, cancelling.held);
      cancelling = undefined;
      early = [];
      config.onError?.(error);
      if (finishIfDrained()) return;
      sleepFor(errorMs, false);
      errorMs = Math.min(maxIdle * 5, errorMs * 2);
    };

    // One step: at most one reserve call, only with demand, never while sleeping or paused.
    const step = (): void => {
      if (busy || sleep || paused || subscriber.closed) return;
      if (finishIfDrained()) return;
      const taken = demand.take(maxBatch, multipleOf);
      // With nothing new to ask for, a park is still renewed (its time runs out otherwise).
      if (taken === 0 && !(park && parking && channelReady)) return;
      busy = true;
      let answered = false;
      const requestedAt = now();
      let options = reserveOptions();
      if (parking && channelReady) {
        parkSeq++;
        options = {
          ...options,
          park: { id: parkId, seq: parkSeq, ttlMs: parkTtlMs(), ...(park ? { cancelSeq: park.seq } : {}) },
        };
        if (park) cancelling = { ...park };
        park = undefined;
      }
      // The margin this call asked the store to count the window with (the gate may use it all).
      const marginMs = options.limit?.marginMs ?? options.groups?.rateLimit?.marginMs;
      pendingCall = store.reserve<T>(queue, taken, options).subscribe({
        next: (result) => {
          answered = true;
          enter(() => {
            onResult(taken, result, requestedAt, marginMs);
          });
        },
        error: (err: unknown) => {
          answered = true;
          enter(() => {
            onFailure(taken, err);
          });
        },
        complete: () => {
          if (!answered) {
            enter(() => {
              onResult(taken, { jobs: [], paused: false, rejected: [] }, requestedAt);
            });
          }
        },
      });
    };

    // Re-entrancy: a synchronous store answers inside step(), and emitting jobs can settle them and
    // replenish demand synchronously, which calls pump() again. Those nested calls only set `again`;
    // the outermost pump loops, so the stack stays flat however many jobs flow.
    let pumping = false;
    let again = false;
    const enter = (fn: () => void): void => {
      const outer = pumping;
      pumping = true;
      try {
        fn();
      } finally {
        pumping = outer;
      }
      pump();
    };
    function pump(): void {
      if (pumping) {
        again = true;
        return;
      }
      pumping = true;
      try {
        do {
          again = false;
          step();
        } while (again as boolean); // set by nested calls
      } finally {
        pumping = false;
      }
    }

    const parkId = parking ? `${Date.now().toString(36)}.${Math.random().toString(36).slice(2)}` : '';
    const subs: Subscription[] = [];
    if (parking && store.openHandoffs) {
      const opened = store.openHandoffs<T>(queue, parkId);
      channel = opened;
      subs.push(
        opened.handoffs.subscribe((handoff) => {
          enter(() => {
            onHandoff(handoff);
          });
        }),
      );
      opened.ready.then(
        () => {
          channelReady = true;
          // A source idle since before it could park parks now, not at its next poll.
          if (!subscriber.closed && !park) wake();
        },
        () => undefined, // not subscribed: this source polls
      );
    }
    // Pause state and wake-ups first: the demand subscription below starts reserving at once.
    subs.push(
      (config.paused ?? EMPTY).subscribe((p) => {
        paused = p;
        if (p) unpark();
        else wake();
        pump();
      }),
      (config.wakeups ?? EMPTY).subscribe(() => {
        wake();
      }),
      demand.outstanding$.subscribe({
        next: () => {
          pump();
        },
        complete: () => {
          finishIfDrained();
        },
      }),
    );

    return () => {
      for (const s of subs) s.unsubscribe();
      sleep?.unsubscribe();
      pendingCall?.unsubscribe();
      for (const w of awaiting.values()) w.timeout.unsubscribe();
      // A park left behind would take jobs nobody runs until their lease ran out.
      if (park && channel) channel.unpark(park.seq).catch(() => undefined);
      channel?.close();
    };
  });
}
