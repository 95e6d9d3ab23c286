import { asyncScheduler, map, type Observable, of, throwError, timer } from 'rxjs';
import type { TestScheduler } from 'rxjs/testing';
import {
  processJobs,
  SlidingWindowLimiter,
  timeStarts,
  type Handler,
  type LimitGrant,
  type RebaseResult,
  type Reservation,
  type ReservedJob,
  type Store,
  type TimeStartsConfig,
} from '@sluice/core';
import { newTestScheduler, reservedJob, stubStore } from '../pipeline/helpers';

/** A single-job handler that records its start and takes `ms` frames. */
const slow =
  (ms: number, starts: number[]): Handler<string> =>
  (job) => {
    starts.push(asyncScheduler.now());
    return timer(ms).pipe(map(() => job.data));
  };

/** A reservation of jobs the store leased (and counted) at store time `at`, sent and answered at once. */
const granted = (at: number, ids: readonly string[], grant?: Partial<LimitGrant>): Reservation<string> => ({
  jobs: ids.map((id): ReservedJob<string> =>
    reservedJob(id, id, { lease: { token: `${id}.1`, expiresAt: 30_000, startedAt: at } }),
  ),
  grant: { at, sentAt: at, receivedAt: at, ...grant },
});

/**
 * A store's rebaseLimit in virtual time: acting when called, answering `delay` frames later,
 * counting moved units from 28 frames before its now (the alignment less the lateness allowed).
 */
const mover =
  (calls: number[], delay = 0, refuseFirst = false) =>
  (from: number): Observable<RebaseResult> => {
    calls.push(from);
    const now = asyncScheduler.now();
    const answer: RebaseResult =
      refuseFirst && calls.length === 1
        ? { moved: false, retryAfterMs: 100 }
        : { moved: true, at: Math.max(from, now - 28), now };
    return delay > 0 ? timer(delay).pipe(map(() => answer)) : of(answer);
  };

/** A store that can only move counts. */
const storeMoving = (rebase: (from: number) => Observable<RebaseResult>): Store =>
  stubStore({ rebaseLimit: (_queue, _limit, grantedAt) => rebase(grantedAt) });

/**
 * 100 per 1,000 ms: a margin of 5 ms (late after 2), starts due 30 after their grant. The local
 * limiter is given explicitly where a test needs a tight one.
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

  it('emits each reservation when it is due, its grant plus the alignment, with a gate on it', () => {
    testScheduler.run(({ cold, expectObservable }) => {
      const reservations = cold('-a---b', { a: granted(1, ['a']), b: granted(5, ['b']) });
      expectObservable(
        reservations.pipe(
          timeStarts(config(stubStore({}))),
          map((r) => `${r.jobs.map((j) => j.id).join('')}${r.gate ? '+gate' : ''}`),
        ),
      ).toBe('31ms a 3ms b', { a: 'a+gate', b: 'b+gate' });
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
      const reservations = cold('a', { a: granted(0, ['a']) });
      reservations
        .pipe(timeStarts(config(store, { clockReadings: 3 })))
        .subscribe(() => log.push(`due@${asyncScheduler.now()}`));
    });
    // Three readings one frame each; the source is subscribed at 3, its grant is due at 30.
    expect(log).toEqual(['clock@0', 'clock@1', 'clock@2', 'due@30']);
  });

  describe('the gate it puts on reservations, asked by processJobs', () => {
    const run = (
      reservations: Observable<Reservation<string>>,
      store: Store,
      starts: number[],
      extra: Partial<TimeStartsConfig> = {},
      concurrency = 5,
    ): void => {
      reservations
        .pipe(timeStarts(config(store, extra)), processJobs(slow(1, starts), { pipeline: 'p', concurrency }))
        .subscribe();
    };

    it('holds a unit that arrives early until its grant plus the alignment', () => {
      const starts: number[] = [];
      testScheduler.run(({ cold }) => {
        run(cold('-----u', { u: granted(0, ['a']) }), storeMoving(mover([])), starts);
      });
      expect(starts).toEqual([30]);
    });

    it('moves the count of a late unit to just before the present, then starts it on time', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // Granted at 0, due at 30, arrives at 50: late by more than 2. The store, at 50, counts it
        // from 22; the answer comes at 54, when a start trails 22 by 32: within the 2 allowed.
        run(cold('50ms u', { u: granted(0, ['a']) }), storeMoving(mover(calls, 4)), starts);
      });
      expect(calls).toEqual([0]);
      expect(starts).toEqual([54]);
    });

    it('moves a grant whose local time is uncertain once, before its start, then keeps to the new one', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // A reserve that took 10 frames: where its grant falls locally is known to within 11 ms, more
        // than the margin allows. It is moved once (still counted from 0: a move never goes before
        // the grant) and the move's quick answer pins it: due 30 after it.
        const slowTrip = granted(0, ['a'], { sentAt: -10 });
        run(cold('-----u', { u: slowTrip }), storeMoving(mover(calls, 2)), starts);
      });
      expect(calls).toEqual([0]);
      expect(starts).toEqual([30]);
    });

    it('stops moving a unit the store keeps answering too slowly for, and starts it', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // Every answer comes 10 frames after the store acted: each start would trail its count by
        // 38, so the unit is moved again, up to the cap (16), then started.
        run(cold('50ms u', { u: granted(0, ['a']) }), storeMoving(mover(calls, 10)), starts);
      });
      expect(calls.length).toBe(16);
      expect(starts).toEqual([210]);
    });

    it('starts a unit late by no more than lateAfterMs without a store call', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        run(cold('32ms u', { u: granted(0, ['a']) }), storeMoving(mover(calls)), starts);
      });
      expect(calls).toEqual([]);
      expect(starts).toEqual([32]);
    });

    it('asks again after retryAfterMs when the store has no room for a late unit', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        run(cold('2000ms u', { u: granted(0, ['a']) }), storeMoving(mover(calls, 0, true)), starts);
      });
      // Refused at 2000; moved at 2100 to 2072, due at 2102.
      expect(calls).toEqual([0, 0]);
      expect(starts).toEqual([2102]);
    });

    it('starts a late unit when the store cannot be reached (it was counted at its grant)', () => {
      const starts: number[] = [];
      testScheduler.run(({ cold }) => {
        run(
          cold('50ms u', { u: granted(0, ['a']) }),
          storeMoving(() => throwError(() => new Error('down'))),
          starts,
        );
      });
      expect(starts).toEqual([50]);
    });

    it('a start the local limit holds back becomes late and is moved in the store', () => {
      const starts: number[] = [];
      const calls: number[] = [];
      testScheduler.run(({ cold }) => {
        // One start per second locally: b, granted with a, waits for a's start to leave the window
        // (1030), is moved to 1002 and starts when due, at 1032.
        run(cold('u', { u: granted(0, ['a', 'b']) }), storeMoving(mover(calls)), starts, {
          limiter: new SlidingWindowLimiter({ allowed: 1, periodMs: 1000 }),
        });
      });
      expect(starts).toEqual([30, 1032]);
      expect(calls).toEqual([0]);
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
