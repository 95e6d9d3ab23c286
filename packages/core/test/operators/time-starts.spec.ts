import {
  asyncScheduler,
  map,
  merge,
  mergeMap,
  type Observable,
  of,
  type SchedulerLike,
  throwError,
  timer,
} from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import {
  definePipeline,
  processJobs,
  timeStarts,
  type Handled,
  type Handler,
  type LimitGrant,
  type RebaseResult,
  type RateLimitSpec,
  type Reservation,
  type ReservedJob,
  type StartGate,
  type Store,
  type TimeStartsConfig,
} from '@sluice/core';
import { groupRateMargin, startTiming, timingLimit } from '@sluice/core/internal';
import { newTestScheduler, reservedJob, stubStore } from '../pipeline/helpers';

/** A single-job handler that records its start and takes `ms` frames. */
const slow =
  (ms: number, starts: number[]): Handler<string> =>
  (job) => {
    starts.push(asyncScheduler.now());
    return timer(ms).pipe(map(() => job.data));
  };

/**
 * A reservation whose units the store recorded at slot `at`, from a reserve call it stamped at
 * `storeNow` (default: the slot), sent and answered at once.
 */
const granted = (at: number, ids: readonly string[], grant?: Partial<LimitGrant>): Reservation<string> => ({
  jobs: ids.map((id): ReservedJob<string> =>
    reservedJob(id, id, { lease: { token: `${id}.1`, expiresAt: 30_000, startedAt: grant?.storeNow ?? at } }),
  ),
  grant: { at, storeNow: at, sentAt: at, receivedAt: at, ...grant },
});

/**
 * A store's rebaseLimit in virtual time: acting when called, answering `delay` frames later, placing
 * the units `lead` after its now (or at its now with `ignoreLead`).
 */
const mover =
  (calls: number[], delay = 0, ignoreLead = false) =>
  (from: number, lead: number): Observable<RebaseResult> => {
    calls.push(from);
    const now = asyncScheduler.now();
    const answer: RebaseResult = { at: ignoreLead ? now : now + lead, now };
    return delay > 0 ? timer(delay).pipe(map(() => answer)) : of(answer);
  };

/** A store that can only move units (and, if given, read its clock). */
const storeMoving = (
  rebase: (from: number, lead: number) => Observable<RebaseResult>,
  storeTime?: () => Observable<number>,
): Store =>
  stubStore({
    rebaseLimit: (_queue, _limit, from, _units, lead) => rebase(from, lead ?? 0),
    ...(storeTime ? { storeTime } : {}),
  });

/**
 * 100 per 1,000 ms: a margin of 10 ms, so a start may come up to 8 after its slot as this process
 * checks it (2 kept for the handler's first steps). A call answered in the frame it was sent knows
 * the store's clock to ±1 (whole milliseconds on both sides): a unit of slot s may start from s + 1
 * to s + 7.
 */
const config = (store: Store, extra: Partial<TimeStartsConfig> = {}): TimeStartsConfig => ({
  store,
  queue: 'q',
  limit: { allowed: 100, periodMs: 1000 },
  ...extra,
});

describe('timeStarts', () => {
  let testScheduler: TestScheduler;
  beforeEach(() => {
    testScheduler = newTestScheduler();
  });

  it('emits each reservation once its slot has surely come, with a gate on it', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const reservations = cold('-a---b', {
        a: granted(10, ['a'], { storeNow: 1, sentAt: 1, receivedAt: 1 }),
        b: granted(12, ['b'], { storeNow: 5, sentAt: 5, receivedAt: 5 }),
      });
      expectObservable(
        reservations.pipe(
          timeStarts(config(stubStore({}))),
          map((r) => `${r.jobs.map((j) => j.id).join('')}${r.gate ? '+gate' : ''}`),
        ),
      ).toBe('11ms a 1ms b', { a: 'a+gate', b: 'b+gate' });
    });
  });

  it('reads the store clock before subscribing to its source', () => {
    const log: string[] = [];
    testScheduler.run(({ cold }) => {
      const store = stubStore({
        storeTime: () => {
          log.push(`clock@${asyncScheduler.now()}`);
          return cold('-(t|)', { t: asyncScheduler.now() });
        },
      });
      const reservations = cold('a', { a: granted(20, ['a'], { storeNow: 0, sentAt: 0, receivedAt: 0 }) });
      reservations
        .pipe(timeStarts(config(store, { clockReadings: 3 })))
        .subscribe(() => log.push(`due@${asyncScheduler.now()}`));
    });
    // Three readings one frame each; the source is subscribed at 3, its slot (20) surely come at 21.
    expect(log).toEqual(['clock@0', 'clock@1', 'clock@2', 'due@21']);
  });

  it('places slots a lead ahead that follows the answers, from 5 ms up to its cap', () => {
    const leads: [number, boolean][] = [];
    const make = startTiming(
      config(stubStore({}), { observer: { lead: (ms, capped) => leads.push([ms, capped]) } }),
    );
    let timing: ReturnType<typeof make> | undefined;
    testScheduler.run(({ cold }) => {
      timing = make(); // on the virtual clock
      expect(timing.leadMs()).toBe(5);
      cold('a 19ms b 199ms c', {
        a: granted(0, ['a'], { sentAt: 0, receivedAt: 0 }), // answered at once: 5 stays
        b: granted(20, ['b'], { sentAt: 0, receivedAt: 20 }), // 20 ms: 1.5 × 20 + 1
        c: granted(220, ['c'], { sentAt: 20, receivedAt: 220 }), // 200 ms: capped at 100
      })
        .pipe(timing.align())
        .subscribe();
    });
    expect(leads).toEqual([
      [31, false],
      [100, true],
    ]);
    expect(timing?.leadMs()).toBe(100);
    expect(timing?.aheadMs()).toBe(200);
  });

  it('learns from a reserve call once, however many slots it was split into', () => {
    const emitted: number[] = [];
    testScheduler.run(({ cold }) => {
      // One quick call pins the clock to ±1; then one slow call (±11 on its own) split into 70
      // reservations, more than the clock keeps: counted 70 times, it would push the quick one out.
      const quick = granted(0, ['q'], { sentAt: 0, receivedAt: 0, storeNow: 0 });
      const split = Array.from({ length: 71 }, (_, i) =>
        granted(i === 70 ? 100 : 5, [`s${i}`], { sentAt: 0, receivedAt: 20, storeNow: 10 }),
      );
      cold('a 19ms b', { a: [quick], b: split })
        .pipe(
          mergeMap((rs) => rs),
          timeStarts(config(stubStore({}), { clockReadings: 0 })),
        )
        .subscribe((r) => {
          if (r.jobs[0]?.id === 's70') emitted.push(asyncScheduler.now());
        });
    });
    // Slot 100 surely comes at 101 with the quick call still known (111 if it had been pushed out).
    expect(emitted).toEqual([101]);
  });

  it('keeps the margin it asks of the store above how late 9 in 10 recent requests leave (ctx.limit.sent), up to its cap', () => {
    const margins: [number, boolean][] = [];
    const sent: number[] = [];
    const asked: [number | undefined, number][] = [];
    testScheduler.run(() => {
      const store = stubStore({
        pauseLimit: (_q, limit, ms) => {
          asked.push([limit.marginMs, limit.periodMs]);
          const now = asyncScheduler.now();
          return of({ until: now + ms, now });
        },
      });
      const timer$ = startTiming(
        config(store, {
          limit: { allowed: 1000, periodMs: 1000, maxMarginMs: 40 },
          observer: {
            sent: (late) => sent.push(late),
            margin: (ms, capped) => margins.push([ms, capped]),
          },
        }),
      )();
      expect(timer$.marginMs()).toBe(10); // 1% of the period to start with
      // 100 units 10 frames apart. Their requests leave 1 frame after the start (the first 30),
      // 20 after (the next 30), 60 after (the last 40), as handlers awaiting some setup would.
      const after = (n: number): number => (n < 30 ? 1 : n < 60 ? 20 : 60);
      const units = merge(
        ...Array.from({ length: 100 }, (_, n) => timer(n * 10).pipe(map(() => granted(n * 10, [`${n}`])))),
      );
      units
        .pipe(
          timer$.align(),
          processJobs<string>(
            (job, ctx) =>
              timer(after(Number(job.id))).pipe(
                map(() => {
                  ctx.limit?.sent();
                  ctx.limit?.sent(); // a second call is ignored
                  return job.data;
                }),
              ),
            { pipeline: 'p', concurrency: 100 },
          ),
        )
        .subscribe();
      testScheduler.flush();
      // Against the earliest its slot could have come (the clock is known to ±1 here).
      expect(sent).toEqual([...Array(30).fill(3), ...Array(30).fill(22), ...Array(40).fill(62)]);
      // Read every 16 requests, of the last 256 (those not seen yet count as on time): after 64,
      // 9 in 10 of them left within 22 (→ 24); after 96, within 62: 64 is more than the cap.
      expect(margins).toEqual([
        [24, false],
        [40, true],
      ]);
      expect(timer$.marginMs()).toBe(40);
      // What goes to the store carries it: the limit's window is the period plus the margin in force.
      timer$.pause(100);
      expect(asked).toEqual([[40, 1040]]);
    });
  });

  it('moves the units of requests that left past the margin to when they left, one call per slot', () => {
    const calls: [number, number, number | undefined, number][] = [];
    const corrected: [number, number, number][] = [];
    const sending =
      (sendAfter: number): Handler<string> =>
      (job, ctx) =>
        timer(sendAfter).pipe(
          map(() => {
            ctx.limit?.sent();
            return job.data;
          }),
        );
    testScheduler.run(({ cold }) => {
      const store = stubStore({
        rebaseLimit: (_q, limit, from, units, lead) => {
          calls.push([from, units, lead, limit.periodMs]);
          const now = asyncScheduler.now();
          return of({ at: now, now });
        },
      });
      const timer$ = startTiming(
        config(store, {
          observer: { corrected: (late, units, moved) => corrected.push([late, units, moved]) },
        }),
      )();
      // a and b share slot 0 and both send 20 frames after they start at 1; c sends 3 after.
      const after = { a: 20, b: 20, c: 3 } as Record<string, number>;
      cold('a 99ms c', { a: granted(0, ['a', 'b']), c: granted(100, ['c']) })
        .pipe(
          timer$.align(),
          processJobs<string>((job, ctx) => sending(after[job.id] ?? 0)(job, ctx), {
            pipeline: 'p',
            concurrency: 2,
          }),
        )
        .subscribe();
      testScheduler.flush();
    });
    // One call for both units of slot 0, placed at the store's now (no lead: the work already ran),
    // with the margin in force (two late requests are not 9 in 10 of the recent ones: 10, a window
    // of 1,010); 22 after the earliest slot 0 could have come, recorded 21 later. c, 5 late, stays
    // where it is.
    expect(calls).toEqual([[0, 2, 0, 1010]]);
    expect(corrected).toEqual([[22, 2, 21]]);
  });

  it("with group limits only: moves a late request's unit in its group's log, one call per slot and group", () => {
    const calls: [number, number, number | undefined, RateLimitSpec][] = [];
    testScheduler.run(({ cold }) => {
      const store = stubStore({
        rebaseLimit: (_q, limit, from, units, lead) => {
          calls.push([from, units, lead, limit]);
          const now = asyncScheduler.now();
          return of({ at: now, now });
        },
      });
      const timer$ = startTiming({ store, queue: 'q', groupLimit: { allowed: 5, periodMs: 1000 } })();
      // a (group g1) and b (g2) share slot 0; both requests leave 20 frames after they start, c (g1) 3.
      const grouped = (at: number, id: string, group: string): Reservation<string> => {
        const unit = granted(at, [id], { groups: [group] });
        return { ...unit, jobs: unit.jobs.map((j) => ({ ...j, group })) };
      };
      const after = { a: 20, b: 20, c: 3 } as Record<string, number>;
      cold('(ab) 99ms c', { a: grouped(0, 'a', 'g1'), b: grouped(0, 'b', 'g2'), c: grouped(100, 'c', 'g1') })
        .pipe(
          timer$.align(),
          processJobs<string>(
            (job, ctx) =>
              timer(after[job.id] ?? 0).pipe(
                map(() => {
                  ctx.limit?.sent();
                  return job.data;
                }),
              ),
            { pipeline: 'p', concurrency: 3 },
          ),
        )
        .subscribe();
      testScheduler.flush();
    });
    // Each late unit moves in its own group's log, at the store's now (no lead); c stays.
    expect(calls.map(([from, units, lead, limit]) => [from, units, lead, limit.group, limit.also])).toEqual([
      [0, 1, 0, 'g1', undefined],
      [0, 1, 0, 'g2', undefined],
    ]);
  });

  it('reports a late request it cannot move (a store without moves)', () => {
    const corrected: [number, number, number][] = [];
    testScheduler.run(({ cold }) => {
      const timer$ = startTiming(
        config(stubStore({}), {
          observer: { corrected: (late, units, moved) => corrected.push([late, units, moved]) },
        }),
      )();
      cold('a', { a: granted(0, ['a']) })
        .pipe(
          timer$.align(),
          processJobs<string>(
            (job, ctx) =>
              timer(30).pipe(
                map(() => {
                  ctx.limit?.sent();
                  return job.data;
                }),
              ),
            { pipeline: 'p', concurrency: 1 },
          ),
        )
        .subscribe();
      testScheduler.flush();
    });
    expect(corrected).toEqual([[32, 1, -1]]);
  });

  it('doubles the margin (up to its cap) after a provider refusal, for the next 256 requests', () => {
    const margins: number[] = [];
    testScheduler.run(() => {
      const store = stubStore({
        pauseLimit: (_q, _limit, ms) => {
          const now = asyncScheduler.now();
          return of({ until: now + ms, now });
        },
      });
      const timer$ = startTiming(
        config(store, {
          limit: { allowed: 100, periodMs: 1000, maxMarginMs: 30 },
          observer: { margin: (ms) => margins.push(ms) },
        }),
      )();
      timer$.pause(500); // a handler returned { retryAfter: 500 }
      expect(timer$.marginMs()).toBe(20);
      timer$.pause(200); // a refusal inside the pause already asked for: the same episode
      expect(timer$.marginMs()).toBe(20);
      timer$.pause(1000); // a longer one: doubled again, up to the cap
      expect(timer$.marginMs()).toBe(30);
    });
    expect(margins).toEqual([20, 30]);
  });

  describe('the gate it puts on reservations, asked by processJobs', () => {
    const run = (
      reservations: Observable<Reservation<string>>,
      store: Store,
      starts: number[],
      extra: Partial<TimeStartsConfig> = {},
      concurrency = 5,
    ): Handled<string>[] => {
      const handled: Handled<string>[] = [];
      reservations
        .pipe(timeStarts(config(store, extra)), processJobs(slow(1, starts), { pipeline: 'p', concurrency }))
        .subscribe((h) => handled.push(...h));
      return handled;
    };

    it('holds a unit that arrives early until its slot has surely come', () => {
      const starts: number[] = [];
      testScheduler.run(({ cold }) => {
        run(
          cold('-----u', { u: granted(30, ['a'], { storeNow: 5, sentAt: 5, receivedAt: 5 }) }),
          storeMoving(mover([])),
          starts,
        );
      });
      expect(starts).toEqual([31]);
    });

    it('tells how long each unit whose slot had come waited for a free handler', () => {
      const starts: number[] = [];
      const waits: number[] = [];
      testScheduler.run(({ cold }) => {
        // One handler, calls of 3 frames: b and c (same slot as a) wait behind a, c behind b too.
        const reservations = cold('5ms (abc)', {
          a: granted(10, ['a'], { storeNow: 5, sentAt: 5, receivedAt: 5 }),
          b: granted(10, ['b'], { storeNow: 5, sentAt: 5, receivedAt: 5 }),
          c: granted(10, ['c'], { storeNow: 5, sentAt: 5, receivedAt: 5 }),
        });
        reservations
          .pipe(
            timeStarts(config(storeMoving(mover([])), { observer: { waited: (ms) => waits.push(ms) } })),
            processJobs(slow(3, starts), { pipeline: 'p', concurrency: 1 }),
          )
          .subscribe();
      });
      expect(starts).toEqual([11, 14, 17]);
      expect(waits).toEqual([0, 3, 6]);
    });

    it('starts a unit late by less than its margin without a store call', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // Slot 30: surely come at 31, surely within the margin until 37.
        run(
          cold('37ms u', { u: granted(30, ['a'], { storeNow: 37, sentAt: 37, receivedAt: 37 }) }),
          storeMoving(mover(calls)),
          starts,
        );
      });
      expect(calls).toEqual([]);
      expect(starts).toEqual([37]);
    });

    it('starts a unit up to the margin its reserve asked (wider than configured) after its slot, and moves it past that', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // Slot 30 counted with a margin of 20 (the worker's margin had grown): surely within it
        // until 29 + 18 = 47; the configured 10 would have moved it. Slot 100, same margin,
        // reaching the gate at 118: moved.
        const wide = { marginMs: 20 };
        run(
          merge(
            cold('47ms u', { u: granted(30, ['a'], { storeNow: 47, sentAt: 47, receivedAt: 47, ...wide }) }),
            cold('118ms u', {
              u: granted(100, ['b'], { storeNow: 118, sentAt: 118, receivedAt: 118, ...wide }),
            }),
          ),
          storeMoving(mover(calls)),
          starts,
        );
      });
      expect(calls).toEqual([100]);
      expect(starts).toEqual([47, 124]);
    });

    it('never lets a grant ask for less than the configured margin', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        run(
          cold('37ms u', {
            u: granted(30, ['a'], { storeNow: 37, sentAt: 37, receivedAt: 37, marginMs: 4 }),
          }),
          storeMoving(mover(calls)),
          starts,
        );
      });
      expect(calls).toEqual([]);
      expect(starts).toEqual([37]);
    });

    it('moves a late unit to a new slot a lead ahead of the store, and starts it there', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // Slot 0, reaching the gate at 50: too late. The store, at 50, places it a lead (5) ahead;
        // the answer comes at 52, and the unit starts when its new slot has surely come (56).
        run(
          cold('50ms u', { u: granted(0, ['a'], { storeNow: 50, sentAt: 50, receivedAt: 50 }) }),
          storeMoving(mover(calls, 2)),
          starts,
        );
      });
      expect(calls).toEqual([0]);
      expect(starts).toEqual([56]);
    });

    it("places a move a lead learnt from the moves' own answers ahead, not the reserve lead", () => {
      const starts: number[] = [];
      const leads: number[] = [];
      testScheduler.run(({ cold }) => {
        // The reserve was answered 40 frames after it was sent (a reserve lead of 61), and its units
        // reach the gate at 100, after their slots (0, then 1). Moves are answered in 2 frames: the
        // first goes the least lead (5) ahead, the next 1.5 × 2 + 1 = 5 too, never 61.
        const store = storeMoving((from, lead) => {
          leads.push(lead);
          return mover([], 2)(from, lead);
        });
        run(
          cold('w 99ms (uv)', {
            // Answered at once: the clock is known to ±1.
            w: granted(0, ['w']),
            u: granted(0, ['a'], { storeNow: 60, sentAt: 60, receivedAt: 100 }),
            v: granted(1, ['b'], { storeNow: 60, sentAt: 60, receivedAt: 100 }),
          }),
          store,
          starts,
        );
      });
      expect(leads).toEqual([5, 5]);
      expect(starts).toHaveLength(3);
      expect(starts.slice(1).every((t) => t < 100 + 61)).toBe(true);
    });

    it('keeps the move lead at the median answer: one stalled answer does not cost every later move', () => {
      const starts: number[] = [];
      const leads: number[] = [];
      let moves = 0;
      testScheduler.run(({ cold }) => {
        // Three units reach the gate late (100, 200, 300). The first move is answered 60 frames
        // later (a stalled process), the others in 2: the later moves still go the least lead
        // (5) ahead, not 1.5 × 60 + 1 as the slowest answer would have them.
        const store = storeMoving((from, lead) => {
          leads.push(lead);
          return mover([], moves++ === 0 ? 60 : 2)(from, lead);
        });
        const late = (at: number, id: string): Reservation<string> =>
          granted(at - 50, [id], { storeNow: at, sentAt: at, receivedAt: at });
        run(
          cold('w 99ms u 99ms v 99ms x', {
            w: granted(0, ['w']),
            u: late(100, 'u'),
            v: late(200, 'v'),
            x: late(300, 'x'),
          }),
          store,
          starts,
        );
      });
      // u's answer came 55 past its new slot: its second move goes the slowest answer's lead
      // (1.5 × 60 + 1); v and x, moved once, the least.
      expect(leads).toEqual([5, 91, 5, 5]);
      expect(starts).toHaveLength(4);
    });

    it('hands a unit back after 8 moves that all came too late, never starting it', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      let handled: Handled<string>[] = [];
      const handedBack: string[] = [];
      const refunds: [number, number][] = [];
      const refunded: number[] = [];
      const placed: number[] = [];
      testScheduler.run(({ cold }) => {
        // Every answer comes 20 frames after the store placed the unit at its now: always late.
        const store = storeMoving((from, lead) => {
          placed.push(asyncScheduler.now()); // where this move puts the unit (the store's now)
          return mover(calls, 20, true)(from, lead);
        });
        store.refundLimit = (_queue, _limit, at, units) => {
          refunds.push([at, units]);
          return of(undefined);
        };
        handled = run(
          cold('50ms u', { u: granted(0, ['a'], { storeNow: 50, sentAt: 50, receivedAt: 50 }) }),
          store,
          starts,
          {
            observer: {
              handedBack: (reason) => handedBack.push(reason),
              refunded: (units) => refunded.push(units),
            },
          },
        );
      });
      expect(calls).toHaveLength(8);
      expect(starts).toEqual([]);
      // Back to the head of its group or priority (a snooze with `front`), no attempt spent.
      expect(handled).toMatchObject([{ job: { id: 'a' }, status: 'snoozed', delayMs: 0, front: true }]);
      expect(handedBack).toEqual(['moved 8 times and still late']);
      // Its unit, last placed by the 8th move (at the store's now when it was asked), is given back
      // there: no work started at it.
      expect(placed).toHaveLength(8);
      expect(refunds).toEqual([[placed[7], 1]]);
      expect(refunded).toEqual([1]);
    });

    it("hands a grouped unit back with its slot, so its group's log gives the unit back; not after a failed move", () => {
      const grouped = (id: string): Reservation<string> => {
        const unit = granted(0, [id], { storeNow: 50, sentAt: 50, receivedAt: 50, groups: ['g1'] });
        return { ...unit, jobs: unit.jobs.map((j) => ({ ...j, group: 'g1' })) };
      };
      let late: Handled<string>[] = [];
      let failed: Handled<string>[] = [];
      testScheduler.run(({ cold }) => {
        // Always late: handed back after 8 moves, its unit surely at the last slot it was moved to.
        late = run(cold('50ms u', { u: grouped('a') }), storeMoving(mover([], 20, true)), [], {
          groupLimit: { allowed: 5, periodMs: 1000 },
        });
        // A move whose answer never came: where the unit is is not known, nothing is given back.
        failed = run(
          cold('50ms u', { u: grouped('b') }),
          storeMoving(() => throwError(() => new Error('connection lost'))),
          [],
          { groupLimit: { allowed: 5, periodMs: 1000 } },
        );
      });
      expect(late).toHaveLength(1);
      // The 8th move placed it at the store's now when asked: 50 + 7 × 20 (answers 20 frames later).
      expect(late[0]).toMatchObject({ status: 'snoozed', front: true, unused: { at: 190, units: 1 } });
      expect(failed).toHaveLength(1);
      expect(failed[0]).toMatchObject({ status: 'snoozed', front: true });
      expect(failed[0]).not.toHaveProperty('unused');
    });

    it("moves a late unit in its group's log with the pipeline's limits: the grant names the group", () => {
      const starts: number[] = [];
      const specs: RateLimitSpec[] = [];
      testScheduler.run(({ cold }) => {
        const store = stubStore({
          rebaseLimit: (_queue, limit, from, _units, lead) => {
            specs.push(limit);
            return mover([])(from, lead ?? 0);
          },
        });
        const unit = granted(0, ['a'], { storeNow: 50, sentAt: 50, receivedAt: 50, groups: ['g1'] });
        const grouped: Reservation<string> = { ...unit, jobs: unit.jobs.map((j) => ({ ...j, group: 'g1' })) };
        run(cold('50ms u', { u: grouped }), store, starts, {
          groupLimit: { allowed: 5, periodMs: 1000 },
        });
      });
      expect(starts).toEqual([56]);
      expect(specs).toHaveLength(1);
      // The pipeline's limit (window with its 10 ms margin), the group's log as a further limit.
      expect(specs[0]).toMatchObject({
        key: 'q',
        allowed: 100,
        periodMs: 1010,
        also: [{ group: 'g1', allowed: 5, periodMs: 1010, marginMs: 10 }],
      });
    });

    it('with group limits only: a late unit of no group starts without a move, a grouped one moves in its log alone', () => {
      const starts: number[] = [];
      const specs: RateLimitSpec[] = [];
      testScheduler.run(({ cold }) => {
        const store = stubStore({
          rebaseLimit: (_queue, limit, from, _units, lead) => {
            specs.push(limit);
            return mover([])(from, lead ?? 0);
          },
        });
        // Both reach the gate at 50, long after their slot (0).
        const plain = granted(0, ['p'], { storeNow: 50, sentAt: 50, receivedAt: 50, groups: ['g1'] });
        const unit = granted(0, ['a'], { storeNow: 50, sentAt: 50, receivedAt: 50, groups: ['g1'] });
        const grouped: Reservation<string> = { ...unit, jobs: unit.jobs.map((j) => ({ ...j, group: 'g1' })) };
        cold('50ms (pu)', { p: plain, u: grouped })
          .pipe(
            timeStarts({ store, queue: 'q', groupLimit: { allowed: 5, periodMs: 1000 } }),
            processJobs(slow(1, starts), { pipeline: 'p', concurrency: 5 }),
          )
          .subscribe();
      });
      expect(starts).toEqual([50, 56]);
      // Timed by the group limit alone: its margin, 1.5% of the window.
      expect(specs).toEqual([{ key: 'g1', group: 'g1', allowed: 5, periodMs: 1015, marginMs: 15 }]);
    });

    it('hands a late unit back when the store cannot be reached to move it', () => {
      const starts: number[] = [];
      let handled: Handled<string>[] = [];
      testScheduler.run(({ cold }) => {
        handled = run(
          cold('50ms u', { u: granted(0, ['a'], { storeNow: 50, sentAt: 50, receivedAt: 50 }) }),
          storeMoving(() => throwError(() => new Error('down'))),
          starts,
        );
      });
      expect(starts).toEqual([]);
      expect(handled).toMatchObject([{ status: 'snoozed', delayMs: 0 }]);
    });

    it('reads the store clock again when a slot cannot be placed within the margin, and starts it then', () => {
      const starts: number[] = [];
      let readings = 0;
      testScheduler.run(({ cold }) => {
        // A reserve that took 20 frames: where slot 40 falls locally is known to ±11 only, wider than
        // the margin. One quick reading of the store's clock pins it: it starts at 41.
        const slowTrip = granted(40, ['a'], { storeNow: 0, sentAt: -20, receivedAt: 0 });
        const clock = (): Observable<number> => {
          readings++;
          return of(asyncScheduler.now());
        };
        run(cold('-----u', { u: slowTrip }), storeMoving(mover([]), clock), starts, { clockReadings: 0 });
      });
      expect(readings).toBe(1);
      expect(starts).toEqual([41]);
    });

    it('units that need the store clock read at once share one reading', () => {
      const starts: number[] = [];
      let readings = 0;
      testScheduler.run(({ cold }) => {
        // Three units of one reserve that took 20 frames (±11, wider than the margin), at slots 40,
        // 41 and 42, reaching the gate at 41, 42 and 43. One reading, sent at 41 and answered at 43,
        // pins the clock (to ±2) for all three: each starts then, within its margin.
        const slowTrip = (at: number, id: string): Reservation<string> =>
          granted(at, [id], { storeNow: 0, sentAt: -20, receivedAt: 0 });
        const clock = (): Observable<number> => {
          readings++;
          return timer(2).pipe(map(() => asyncScheduler.now()));
        };
        run(
          cold('-----(abc)', { a: slowTrip(40, 'a'), b: slowTrip(41, 'b'), c: slowTrip(42, 'c') }),
          storeMoving(mover([]), clock),
          starts,
          { clockReadings: 0 },
        );
      });
      expect(readings).toBe(1);
      expect(starts).toEqual([43, 43, 43]);
    });

    it('hands a unit back when the clock stays too uncertain to place it', () => {
      const starts: number[] = [];
      let handled: Handled<string>[] = [];
      testScheduler.run(({ cold }) => {
        const slowTrip = granted(40, ['a'], { storeNow: 0, sentAt: -20, receivedAt: 0 });
        handled = run(cold('-----u', { u: slowTrip }), storeMoving(mover([])), starts); // no clock to read
      });
      expect(starts).toEqual([]);
      expect(handled).toMatchObject([{ status: 'snoozed', delayMs: 0 }]);
    });

    it('starts units through a long stretch of slow answers after one quick one, without reading the clock again', () => {
      const starts: number[] = [];
      let handled: Handled<string>[] = [];
      let readings = 0;
      const slots: number[] = [];
      testScheduler.run(({ cold }) => {
        // A quick reserve, then 100 slow ones: each stamped 1 frame after it was sent and answered 30
        // frames after (the answer waited for its process, as on a loaded machine). On their own they
        // place a slot to ±15 only; the quick one, kept past the 64 recent calls, to ±1 plus the
        // drift allowed since.
        const values: Record<string, Reservation<string>> = {
          q: granted(5, ['q'], { storeNow: 0, sentAt: 0, receivedAt: 0 }),
        };
        const marbles = 'q';
        for (let i = 0; i < 100; i++) {
          const at = 40 + i * 10; // answered then
          slots.push(at + 5);
          values[`r${i}`] = granted(at + 5, [`r${i}`], {
            storeNow: at - 29,
            sentAt: at - 30,
            receivedAt: at,
          });
        }
        const reservations = merge(
          cold(marbles, values),
          ...Array.from({ length: 100 }, (_, i) => cold(`${40 + i * 10}ms u`, { u: values[`r${i}`]! })),
        );
        const clock = (): Observable<number> => {
          readings++;
          return of(asyncScheduler.now());
        };
        handled = run(reservations, storeMoving(mover([]), clock), starts, { clockReadings: 0 });
      });
      expect(readings).toBe(0);
      expect(handled.filter((h) => h.status === 'snoozed')).toEqual([]);
      expect(starts).toHaveLength(101);
      // Each within its margin (store and local clocks are the same here): from its slot to 8 after.
      const late = starts.slice(1).map((at, i) => at - slots[i]!);
      expect(Math.min(...late)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...late)).toBeLessThanOrEqual(8);
    });

    it('moves a unit whose moment passed between its check and its handler call (a stall), and starts it from the new slot', () => {
      const calls: number[] = [];
      const answers: string[] = [];
      const moved: number[] = [];
      const started: number[] = [];
      // The local clock and the store's are one here; `stall` pushes both ahead at once, as a
      // process that was not running finds when it runs again.
      let stall = 0;
      const clock: SchedulerLike = {
        now: () => asyncScheduler.now() + stall,
        schedule: asyncScheduler.schedule.bind(asyncScheduler),
      };
      const store = storeMoving((from, lead) => {
        calls.push(from);
        const now = clock.now();
        return of({ at: now + lead, now });
      });
      testScheduler.run(({ cold }) => {
        cold('35ms u', { u: granted(30, ['a'], { storeNow: 35, sentAt: 35, receivedAt: 35 }) })
          .pipe(
            timeStarts(
              config(store, {
                scheduler: clock,
                observer: { moved: (ms) => moved.push(ms), started: (ms) => started.push(ms) },
              }),
            ),
          )
          .subscribe((r) => {
            r.gate?.admit(
              r.jobs,
              r.grant,
              (limit, confirm) => {
                // Checked at 35 (slot 30: within the margin until 37); 25 ms pass before the call.
                if (answers.length === 0) stall = 25;
                const ok = confirm?.() ?? true;
                answers.push(`slot ${limit?.slot} at ${clock.now()}: ${ok ? 'call' : 'no call'}`);
              },
              (reason) => answers.push(`handed back: ${reason}`),
            );
          });
      });
      // Found 29 ms past its slot at the call: moved from slot 30 to the store's now (60) and a
      // lead ahead, and started there when that slot had surely come.
      expect(calls).toEqual([30]);
      expect(moved).toEqual([29]);
      expect(answers).toEqual(['slot 30 at 60: no call', 'slot 65 at 66: call']);
      expect(started).toEqual([0]);
    });

    it("calls no handler when the gate's confirm says no, leaves no timeout behind, and runs the unit when started again", () => {
      const starts: number[] = [];
      const handled: Handled<string>[] = [];
      testScheduler.run(({ cold }) => {
        const gate: StartGate = {
          admit: (_jobs, _grant, start) => {
            start({ slot: 0, sent: () => undefined }, () => false);
            return timer(5).subscribe(() => {
              start({ slot: 5, sent: () => undefined }, () => true);
            });
          },
        };
        // A timeout of 3: one left behind by the first try would abort the unit at 3.
        cold('u', { u: { jobs: [reservedJob('a', 'a')], gate } })
          .pipe(processJobs(slow(1, starts), { pipeline: 'p', concurrency: 1, timeoutMs: 3 }))
          .subscribe((h) => handled.push(...h));
      });
      expect(starts).toEqual([5]);
      expect(handled.map((h) => h.status)).toEqual(['completed']);
    });

    it('gates nothing when nothing is limited: processJobs starts at once', () => {
      const starts: number[] = [];
      testScheduler.run(({ cold }) => {
        cold('-----u', { u: granted(0, ['a']) })
          .pipe(processJobs(slow(1, starts), { pipeline: 'p' }))
          .subscribe();
      });
      expect(starts).toEqual([5]);
    });
  });
});

describe('the margin of a group rate limit that times starts alone', () => {
  it('is 1.5% of the window, from 4 to 30 ms, unless set; a pipeline limit times them when there is one', () => {
    expect(groupRateMargin({ allowed: 10, periodMs: 1000 })).toBe(15);
    expect(groupRateMargin({ allowed: 10, periodMs: 100 })).toBe(4);
    expect(groupRateMargin({ allowed: 10, periodMs: 60_000 })).toBe(30);
    expect(groupRateMargin({ allowed: 10, periodMs: 1000, marginMs: 25 })).toBe(25);
    expect(timingLimit({ groupLimit: { allowed: 10, periodMs: 1000 } })).toEqual({
      allowed: 10,
      periodMs: 1000,
      marginMs: 15,
    });
    const limit = { allowed: 400, periodMs: 1000 };
    expect(timingLimit({ limit, groupLimit: { allowed: 10, periodMs: 1000 } })).toBe(limit);
    expect(() =>
      definePipeline({
        queue: 'q',
        groups: { rateLimit: { allowed: 10, periodMs: 1000, marginMs: 2 } },
        handler: () => undefined,
      }),
    ).toThrow('groups.rateLimit.marginMs must be ≥ 4, got 2');
  });
});
