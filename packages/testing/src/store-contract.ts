import { firstValueFrom, take, timeout, toArray } from 'rxjs';
import {
  ACTIVE_CAP_CHECK_MS,
  DEFAULT_MAX_ATTEMPTS,
  DEFAULT_RETENTION,
  JobState,
  MAX_ATTEMPT_ERRORS,
  MAX_JOB_LOG_LINES,
  MAX_PROGRESS_BYTES,
  maxInAnyWindow,
  MemoryStore,
  OutcomeKind,
  type NewJob,
  type ReservedJob,
  type Settlement,
  type Store,
} from '@sluice/core';
import { ManualClock } from './manual-clock';
import { subscribed } from './subscribed';
import { defineGroupContract } from './store-contract-groups';
import { defineGroupLimitContract } from './store-contract-group-limits';

/** A store under test, with a way to move its clock forward. */
export interface StoreFixture {
  readonly store: Store;
  /**
   * Moves the store's clock forward by `ms`. A store on a manual clock jumps; a store on a real clock
   * (Redis) sleeps. Default: sleep.
   */
  advance?(ms: number): Promise<void>;
  /** Releases what the fixture created (closes the store, deletes its keys). */
  cleanup?(): Promise<void>;
}

/** A fresh `MemoryStore` on a manual clock that `advance` moves. */
export function memoryStoreFixture(): StoreFixture {
  const clock = new ManualClock();
  return {
    store: new MemoryStore({ scheduler: clock }),
    advance: (ms) => {
      clock.advance(ms);
      return Promise.resolve();
    },
  };
}

export interface StoreContractOptions {
  /**
   * Scale for every duration the suite waits on. Stores on a real clock need durations well above
   * their round-trip time. Default `1`.
   */
  readonly timeScale?: number;
}

/**
 * Resolves once `ms` have passed on the precise monotonic clock, so a real store's clock read after
 * it has moved by at least `ms`. A timer alone can fire up to a millisecond early (libuv keeps the
 * loop's time on a coarse clock): `setTimeout(…, 20)` ran after 19.2 ms, 14 times in 300, and a
 * contract test saw Redis `TIME` move 99 ms across a 100 ms sleep.
 */
const sleep = async (ms: number): Promise<void> => {
  const until = performance.now() + ms;
  for (let left = ms; left > 0; left = until - performance.now()) {
    await new Promise((resolve) => setTimeout(resolve, Math.ceil(left)));
  }
};

/**
 * The behavioural suite every `Store` must pass, as Jest tests. One suite, many stores: this is what
 * makes `MemoryStore` a faithful stand-in for `RedisStore` in tests.
 *
 * `createStore` is called for each test and must return a fresh, empty store (a new key prefix for a
 * shared Redis).
 *
 * ## Example
 * ```ts
 * defineStoreContract('MemoryStore', () => {
 *   const clock = new ManualClock();
 *   return { store: new MemoryStore({ scheduler: clock }), advance: async (ms) => clock.advance(ms) };
 * });
 * ```
 */
export function defineStoreContract(
  name: string,
  createStore: () => StoreFixture | Promise<StoreFixture>,
  options: StoreContractOptions = {},
): void {
  const k = options.timeScale ?? 1;

  describe(`Store contract: ${name}`, () => {
    let fx: StoreFixture;
    let store: Store;
    const advance = (ms: number): Promise<void> => (fx.advance ? fx.advance(ms * k) : sleep(ms * k));

    beforeEach(async () => {
      fx = await createStore();
      store = fx.store;
    });
    afterEach(async () => {
      if (fx.cleanup) await fx.cleanup();
      else await store.close();
    });

    const add = (jobs: NewJob[]) => firstValueFrom(store.enqueue(jobs));
    const reserve = (queue: string, n: number, extra: Partial<Parameters<Store['reserve']>[2]> = {}) =>
      firstValueFrom(store.reserve(queue, n, { leaseMs: 10_000, ...extra }));
    /** A reserve's slot times, one per job. */
    const slotsOf = (r: Awaited<ReturnType<typeof reserve>>): number[] =>
      (r.slots ?? []).flatMap((s) => Array.from({ length: s.jobs }, () => s.at));
    const settleAll = (settlements: Settlement[]) => firstValueFrom(store.settle(settlements));
    const base = (job: ReservedJob) => ({ queue: job.queue, id: job.id, token: job.lease.token });

    describe('groups', () => {
      defineGroupContract({ store: () => store, advance });
    });

    describe('group rate limits', () => {
      defineGroupLimitContract({ store: () => store, advance });
    });

    describe('enqueue and reserve', () => {
      it('returns one id per job and reserves in priority order, then FIFO', async () => {
        const results = await add([
          { queue: 'q', data: { n: 1 }, priority: 5 },
          { queue: 'q', data: { n: 2 } },
          { queue: 'q', data: { n: 3 }, priority: 5 },
          { queue: 'q', data: { n: 4 } },
          { queue: 'q', data: { n: 5 }, priority: 1 },
        ]);
        expect(results).toHaveLength(5);
        expect(new Set(results.map((r) => r.id)).size).toBe(5);
        expect(results.every((r) => !r.duplicate)).toBe(true);
        const { jobs } = await reserve('q', 10);
        expect(jobs.map((j) => (j.data as { n: number }).n)).toEqual([2, 4, 5, 1, 3]);
      });

      it('reserves at most n jobs, leases them and counts the attempt', async () => {
        await add([1, 2, 3].map((n) => ({ queue: 'q', data: n, maxAttempts: 3 })));
        const first = await reserve('q', 2);
        expect(first.jobs).toHaveLength(2);
        expect(first.paused).toBe(false);
        for (const job of first.jobs) {
          expect(job.attempt).toBe(1);
          expect(job.maxAttempts).toBe(3);
          expect(job.lease.token).toEqual(expect.any(String));
          expect(job.lease.expiresAt).toBeGreaterThan(job.lease.startedAt);
        }
        const stats = await store.stats('q');
        expect(stats.counts.ready).toBe(1);
        expect(stats.counts.running).toBe(2);
        expect(stats.totals.enqueued).toBe(3);
        const second = await reserve('q', 5);
        expect(second.jobs).toHaveLength(1);
        expect((await reserve('q', 5)).jobs).toHaveLength(0);
      });

      it('keeps the payload, name and options it was given', async () => {
        const data = { to: 'a@example.com', nested: { list: [1, 'two', null] }, unicode: 'żółw 🐢' };
        const [r] = await add([{ queue: 'q', name: 'send', data, timeoutMs: 1234, priority: 7 }]);
        const { jobs } = await reserve('q', 1);
        const job = jobs[0]!;
        expect(job.id).toBe(r!.id);
        expect(job.data).toEqual(data);
        expect(job.name).toBe('send');
        expect(job.queue).toBe('q');
        expect(job.timeoutMs).toBe(1234);
        expect(job.priority).toBe(7);
      });

      it("keeps a job's trace context and hands it to the worker; refuses a malformed one", async () => {
        const trace = {
          traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
          tracestate: 'rojo=00f067aa0ba902b7, congo=t61rcWkgMzE',
        };
        const [traced, plain, onlyParent] = await add([
          { queue: 'q', data: 1, trace },
          { queue: 'q', data: 2 },
          { queue: 'q', data: 3, trace: { traceparent: trace.traceparent } },
        ]);
        expect((await store.getJob('q', traced!.id))?.trace).toEqual(trace);
        expect(await store.getJob('q', plain!.id)).not.toHaveProperty('trace');
        const { jobs } = await reserve('q', 3);
        expect(jobs.map((j) => j.trace)).toEqual([trace, undefined, { traceparent: trace.traceparent }]);
        expect(jobs[1]).not.toHaveProperty('trace');
        expect(
          (await store.listJobs('q', JobState.Running)).find((j) => j.id === onlyParent!.id)?.trace,
        ).toEqual({
          traceparent: trace.traceparent,
        });
        for (const bad of [
          { traceparent: 'not-a-traceparent' },
          { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' },
          { traceparent: '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01' },
          { traceparent: 'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
          { traceparent: trace.traceparent, tracestate: 'no equals sign' },
          { traceparent: trace.traceparent, extra: 1 },
          'a string',
        ]) {
          await expect(
            add([
              { queue: 'q', data: 'fine' },
              { queue: 'q', data: 4, trace: bad as never },
            ]),
          ).rejects.toMatchObject({
            code: 'ERR_SLUICE_INVALID_ARGUMENT',
            message: expect.stringMatching(/^trace/),
          });
        }
        expect((await store.stats('q')).totals.enqueued).toBe(3);
      });

      it('stores a payload given already encoded as is', async () => {
        const [r] = await add([{ queue: 'q', data: { n: 1, s: 'é' }, json: '{"n":1,"s":"é"}' }]);
        expect((await store.getJob('q', r!.id))?.data).toEqual({ n: 1, s: 'é' });
        expect((await reserve('q', 1)).jobs[0]?.data).toEqual({ n: 1, s: 'é' });
      });

      it('treats an existing caller-chosen id as a duplicate', async () => {
        const [a] = await add([{ queue: 'q', id: 'order-17', data: 1 }]);
        const [b] = await add([{ queue: 'q', id: 'order-17', data: 2 }]);
        expect(a).toEqual({ id: 'order-17', duplicate: false });
        expect(b).toEqual({ id: 'order-17', duplicate: true });
        expect((await store.stats('q')).counts.ready).toBe(1);
        expect((await store.getJob('q', 'order-17'))?.data).toBe(1);
      });

      it('never gives a generated id that a caller already chose', async () => {
        await add(['1', '2', '3'].map((id) => ({ queue: 'q', id, data: `chosen-${id}` })));
        const generated = await add([1, 2, 3].map((n) => ({ queue: 'q', data: n })));
        expect(generated.every((r) => !r.duplicate)).toBe(true);
        expect(new Set([...generated.map((r) => r.id), '1', '2', '3']).size).toBe(6);
        expect((await store.getJob('q', '2'))?.data).toBe('chosen-2');
      });

      it('collapses unique jobs while the lock lives, then accepts a new one', async () => {
        const [a] = await add([{ queue: 'q', data: 1, unique: { key: 'user-9', ttlMs: 200 } }]);
        const [b] = await add([{ queue: 'q', data: 2, unique: { key: 'user-9', ttlMs: 200 } }]);
        expect(b).toEqual({ id: a!.id, duplicate: true });
        await advance(250);
        const [c] = await add([{ queue: 'q', data: 3, unique: { key: 'user-9', ttlMs: 200 } }]);
        expect(c!.duplicate).toBe(false);
        expect(c!.id).not.toBe(a!.id);
      });

      it('rejects a bulk add with one invalid job and stores none of it', async () => {
        await expect(
          add([
            { queue: 'q', data: 1 },
            { queue: 'q', data: 2, priority: -1 },
          ]),
        ).rejects.toThrow(/priority/);
        await expect(add([{ queue: 'bad name!', data: 1 }])).rejects.toThrow(/queue name/);
        expect((await store.stats('q')).counts.ready).toBe(0);
      });

      it('emits a wake-up when jobs are added', async () => {
        const woke = firstValueFrom(store.wakeups('q').pipe(take(1), timeout(2000)));
        await subscribed(store, 'q');
        await add([{ queue: 'q', data: 1 }]);
        await expect(woke).resolves.toBeUndefined();
      });

      it('rejects n < 1', async () => {
        await expect(reserve('q', 0)).rejects.toThrow();
      });
    });

    describe('scheduling', () => {
      it('holds a delayed job until it is due, and hints when to look again', async () => {
        await add([{ queue: 'q', data: 'later', delayMs: 300 }]);
        const early = await reserve('q', 1);
        expect(early.jobs).toHaveLength(0);
        expect(early.nextCheckInMs).toBeGreaterThan(0);
        expect(early.nextCheckInMs).toBeLessThanOrEqual(300 * k);
        expect((await store.stats('q')).counts.scheduled).toBe(1);
        await advance(350);
        const due = await reserve('q', 1);
        expect(due.jobs.map((j) => j.data)).toEqual(['later']);
      });

      it('honours an absolute runAt, and promoteJob makes a scheduled job due now', async () => {
        const [r] = await add([{ queue: 'q', data: 'far', runAt: Date.now() + 3_600_000 }]);
        expect((await reserve('q', 1)).jobs).toHaveLength(0);
        expect(await store.promoteJob('q', r!.id)).toBe(true);
        expect((await reserve('q', 1)).jobs.map((j) => j.id)).toEqual([r!.id]);
        expect(await store.promoteJob('q', r!.id)).toBe(false);
      });
    });

    describe('settle', () => {
      it('completes a job, keeps its result and publishes the event', async () => {
        const events = firstValueFrom(store.events('q').pipe(take(1), timeout(2000)));
        await sleep(20);
        const [r] = await add([{ queue: 'q', data: 1 }]);
        const [job] = (await reserve('q', 1)).jobs;
        const [res] = await settleAll([
          { ...base(job!), kind: 'completed', result: { ok: true }, durationMs: 3 },
        ]);
        expect(res).toMatchObject({ id: r!.id, applied: true });
        const rec = await store.getJob('q', r!.id);
        expect(rec).toMatchObject({ state: JobState.Completed, result: { ok: true }, attempt: 1 });
        expect(rec?.finishedAt).toEqual(expect.any(Number));
        const stats = await store.stats('q');
        expect(stats.counts).toMatchObject({ running: 0, completed: 1 });
        expect(stats.totals.completed).toBe(1);
        await expect(events).resolves.toMatchObject({ id: r!.id, kind: 'completed', result: { ok: true } });
      });

      it("records each completion without a result (attempt, its lease's start, end), and keeps none under a retention of none", async () => {
        await add([1, 2, 3].map((n) => ({ queue: 'q', data: n })));
        // Two leases started apart, settled in one call: each job keeps its own lease's start.
        const early = (await reserve('q', 2)).jobs;
        await advance(5);
        const jobs = [...early, ...(await reserve('q', 1)).jobs];
        expect(jobs[2]!.lease.startedAt).toBeGreaterThan(jobs[0]!.lease.startedAt);
        const done = (j: ReservedJob): Settlement => ({
          ...base(j),
          kind: 'completed',
          result: undefined,
          durationMs: 1,
        });
        expect((await settleAll(jobs.map(done))).map((r) => r.applied)).toEqual([true, true, true]);
        for (const j of jobs) {
          const rec = await store.getJob('q', j.id);
          expect(rec).toMatchObject({ state: JobState.Completed, attempt: 1, startedAt: j.lease.startedAt });
          expect(rec?.finishedAt).toBeGreaterThanOrEqual(j.lease.startedAt);
          expect(rec?.result).toBeUndefined();
        }
        expect((await store.listJobs('q', JobState.Completed)).map((j) => j.data)).toEqual([3, 2, 1]);
        await store.setQueueConfig('none', { retention: { keep: 'none' } });
        await add([4, 5].map((n) => ({ queue: 'none', data: n })));
        const gone = (await reserve('none', 2)).jobs;
        expect((await settleAll(gone.map(done))).map((r) => r.applied)).toEqual([true, true]);
        for (const j of gone) expect(await store.getJob('none', j.id)).toBeUndefined();
        const stats = await store.stats('none');
        expect(stats.counts.completed).toBe(0);
        expect(stats.totals.completed).toBe(2);
      });

      it('completes a job whose result JSON cannot encode, without the result', async () => {
        await add([{ queue: 'q', data: 1 }]);
        const [job] = (await reserve('q', 1)).jobs;
        const cyclic: Record<string, unknown> = {};
        cyclic['self'] = cyclic;
        const [res] = await settleAll([{ ...base(job!), kind: 'completed', result: cyclic, durationMs: 1 }]);
        expect(res?.applied).toBe(true);
        const rec = await store.getJob('q', job!.id);
        expect(rec?.state).toBe('completed');
        expect(rec?.result).toBeUndefined();
      });

      it('retries after the delay with the next attempt, recording the error', async () => {
        await add([{ queue: 'q', data: 1, maxAttempts: 3 }]);
        const [job] = (await reserve('q', 1)).jobs;
        const [res] = await settleAll([
          { ...base(job!), kind: 'retrying', delayMs: 200, error: { name: 'Error', message: 'boom' } },
        ]);
        expect(res).toMatchObject({ applied: true });
        expect(res!.applied && res!.runAt! - res!.at).toBe(200);
        expect((await reserve('q', 1)).jobs).toHaveLength(0);
        await advance(250);
        const [again] = (await reserve('q', 1)).jobs;
        expect(again?.id).toBe(job!.id);
        expect(again?.attempt).toBe(2);
        const rec = await store.getJob('q', job!.id);
        expect(rec?.errors).toEqual([expect.objectContaining({ message: 'boom', attempt: 1 })]);
        expect((await store.stats('q')).totals.failed).toBe(1);
      });

      it('dead-letters, lists, retries and purges', async () => {
        await add([1, 2, 3].map((n) => ({ queue: 'q', data: n })));
        const { jobs } = await reserve('q', 3);
        await settleAll(
          jobs.map((j) => ({
            ...base(j),
            kind: 'dead',
            reason: 'hard bounce',
            error: { name: 'E', message: 'no' },
          })),
        );
        const dead = await store.listJobs('q', JobState.Dead);
        expect(dead).toHaveLength(3);
        expect(dead[0]).toMatchObject({ state: 'dead', reason: 'hard bounce' });
        expect((await store.stats('q')).totals.dead).toBe(3);

        expect(await store.retryJobs('q', [jobs[0]!.id])).toBe(1);
        const [retried] = (await reserve('q', 5)).jobs;
        expect(retried?.id).toBe(jobs[0]!.id);
        expect(retried?.attempt).toBe(1);

        expect(await store.retryJobs('q', 'all-dead')).toBe(2);
        expect((await store.stats('q')).counts).toMatchObject({ ready: 2, dead: 0 });
        const again = (await reserve('q', 5)).jobs;
        await settleAll(again.map((j) => ({ ...base(j), kind: 'dead', reason: 'again' })));
        expect(await store.purge('q', 'dead')).toBe(2);
        expect(await store.listJobs('q', JobState.Dead)).toHaveLength(0);
        expect(await store.getJob('q', again[0]!.id)).toBeUndefined();
      });

      it('snoozes without spending an attempt', async () => {
        await add([{ queue: 'q', data: 1 }]);
        const [job] = (await reserve('q', 1)).jobs;
        await settleAll([{ ...base(job!), kind: 'snoozed', delayMs: 100 }]);
        expect((await store.getJob('q', job!.id))?.state).toBe('scheduled');
        await advance(150);
        const [again] = (await reserve('q', 1)).jobs;
        expect(again?.attempt).toBe(1);
      });

      it('publishes each settlement as an event of the same kind, with its reason and error', async () => {
        const seen = firstValueFrom(store.events('q').pipe(take(5), toArray(), timeout(2000)));
        await sleep(20);
        await add([1, 2, 3, 4, 5].map((n) => ({ queue: 'q', data: n })));
        const [a, b, c, d, e] = (await reserve('q', 5)).jobs;
        const error = { name: 'E', message: 'm' };
        await settleAll([
          { ...base(a!), kind: 'completed', result: 'A', durationMs: 1 },
          { ...base(b!), kind: 'retrying', delayMs: 1000, error },
          { ...base(c!), kind: 'dead', reason: 'hard bounce', error },
          { ...base(d!), kind: 'snoozed', delayMs: 1000 },
          { ...base(e!), kind: 'cancelled', reason: 'user asked' },
        ]);
        const events = await seen;
        expect(events.map((ev) => ev.id)).toEqual([a, b, c, d, e].map((j) => j!.id));
        expect(events.map((ev) => ev.kind)).toEqual(Object.values(OutcomeKind));
        expect(events[0]).toMatchObject({ result: 'A' });
        expect(events[1]).toMatchObject({ error });
        expect(events[2]).toMatchObject({ reason: 'hard bounce', error });
        expect(events[4]).toMatchObject({ reason: 'user asked' });
      });

      it('keeps the first attempt error and the latest ones, MAX_ATTEMPT_ERRORS in all', async () => {
        const failures = MAX_ATTEMPT_ERRORS + 2;
        const [r] = await add([{ queue: 'q', data: 1, maxAttempts: failures + 1 }]);
        for (let i = 1; i <= failures; i++) {
          const [job] = (await reserve('q', 1)).jobs;
          expect(job?.attempt).toBe(i);
          await settleAll([
            { ...base(job!), kind: 'retrying', delayMs: 0, error: { name: 'E', message: `failure ${i}` } },
          ]);
        }
        const latest = Array.from(
          { length: MAX_ATTEMPT_ERRORS - 1 },
          (_, i) => failures - MAX_ATTEMPT_ERRORS + 2 + i,
        );
        const kept = [1, ...latest];
        const rec = await store.getJob('q', r!.id);
        expect(rec?.errors.map((e) => e.attempt)).toEqual(kept);
        expect(rec?.errors.map((e) => e.message)).toEqual(kept.map((i) => `failure ${i}`));
      });

      it('applies a batch of mixed settlements in one call, refusing unknown jobs', async () => {
        await add([1, 2, 3].map((n) => ({ queue: 'q', data: n })));
        const [a, b, c] = (await reserve('q', 3)).jobs;
        const results = await settleAll([
          { ...base(a!), kind: 'completed', result: 'A', durationMs: 1 },
          { ...base(b!), kind: 'cancelled', reason: 'user asked' },
          { ...base(c!), kind: 'retrying', delayMs: 0, error: { name: 'E', message: 'x' } },
          { queue: 'q', id: 'nope', token: 't', kind: 'completed', result: null, durationMs: 1 },
        ]);
        expect(results.map((r) => r.applied)).toEqual([true, true, true, false]);
        expect(results[3]).toMatchObject({ applied: false, reason: 'not-found' });
        expect(await store.getJob('q', b!.id)).toMatchObject({ state: 'cancelled', reason: 'user asked' });
        expect((await reserve('q', 5)).jobs.map((j) => j.id)).toEqual([c!.id]);
      });

      it('settles jobs of several queues in one call, answering in order, a queue name that cannot exist refused', async () => {
        await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        await add([{ queue: 'q2', data: 3 }]);
        const [a, b] = (await reserve('q', 2)).jobs;
        const [c] = (await reserve('q2', 1)).jobs;
        const results = await settleAll([
          { ...base(a!), kind: 'completed', result: 'A', durationMs: 1 },
          { ...base(b!), queue: 'not a queue', kind: 'completed', result: null, durationMs: 1 },
          { ...base(c!), kind: 'completed', result: 'C', durationMs: 1 },
          { ...base(b!), kind: 'completed', result: 'B', durationMs: 1 },
        ]);
        expect(results.map((r) => [r.id, r.applied])).toEqual([
          [a!.id, true],
          [b!.id, false],
          [c!.id, true],
          [b!.id, true],
        ]);
        expect(results[1]).toMatchObject({ reason: 'not-found' });
        expect(await store.getJob('q', b!.id)).toMatchObject({ state: 'completed', result: 'B' });
        expect(await store.getJob('q2', c!.id)).toMatchObject({ state: 'completed', result: 'C' });
      });
    });

    describe('leases', () => {
      it('recovers an expired lease and refuses the late settle of the old holder', async () => {
        await add([{ queue: 'q', data: 1, maxAttempts: 5 }]);
        const [old] = (await reserve('q', 1, { leaseMs: 100 })).jobs;
        expect((await firstValueFrom(store.recoverExpired('q'))).recovered).toEqual([]);
        await advance(150);
        const rec = await firstValueFrom(store.recoverExpired('q'));
        expect(rec.recovered).toEqual([old!.id]);
        // Idempotent: a second pass (another node) finds nothing.
        expect((await firstValueFrom(store.recoverExpired('q'))).recovered).toEqual([]);
        const [fresh] = (await reserve('q', 1)).jobs;
        expect(fresh?.id).toBe(old!.id);
        expect(fresh?.attempt).toBe(2);
        expect(fresh?.lease.token).not.toBe(old!.lease.token);
        const [late] = await settleAll([{ ...base(old!), kind: 'completed', result: 'late', durationMs: 1 }]);
        expect(late).toMatchObject({ applied: false, reason: 'lease-lost' });
        const [ok] = await settleAll([
          { ...base(fresh!), kind: 'completed', result: 'fresh', durationMs: 1 },
        ]);
        expect(ok?.applied).toBe(true);
        expect((await store.getJob('q', old!.id))?.result).toBe('fresh');
      });

      it('records the worker a reserve names on the lease, and no stale one on a later lease', async () => {
        await add([{ queue: 'q', data: 1, maxAttempts: 5 }]);
        const [first] = (await reserve('q', 1, { leaseMs: 50, workerId: 'worker-a' })).jobs;
        expect(first?.lease.workerId).toBe('worker-a');
        expect((await store.getJob('q', first!.id))?.lease?.workerId).toBe('worker-a');
        const [listed] = await store.listJobs('q', 'running');
        expect(listed?.lease?.workerId).toBe('worker-a');

        await advance(100);
        expect((await firstValueFrom(store.recoverExpired('q'))).recovered).toEqual([first!.id]);
        const [second] = (await reserve('q', 1, { leaseMs: 50 })).jobs;
        expect(second?.id).toBe(first!.id);
        expect(second?.lease.workerId).toBeUndefined();
        const running = await store.getJob('q', first!.id);
        expect(running?.state).toBe('running');
        expect(running?.lease?.workerId).toBeUndefined();

        await advance(100);
        await firstValueFrom(store.recoverExpired('q'));
        const [third] = (await reserve('q', 1, { workerId: 'worker-b' })).jobs;
        expect((await store.getJob('q', third!.id))?.lease?.workerId).toBe('worker-b');
        await settleAll([{ ...base(third!), kind: 'completed', result: null, durationMs: 1 }]);
        expect((await store.getJob('q', third!.id))?.lease).toBeUndefined();
      });

      it('dead-letters a job whose lease expired on its last attempt', async () => {
        await add([{ queue: 'q', data: 1, maxAttempts: 1 }]);
        const [job] = (await reserve('q', 1, { leaseMs: 50 })).jobs;
        await advance(100);
        const rec = await firstValueFrom(store.recoverExpired('q'));
        expect(rec.dead).toEqual([job!.id]);
        const dead = await store.getJob('q', job!.id);
        expect(dead?.state).toBe('dead');
        expect(dead?.reason).toMatch(/lease expired/);
      });

      it('gives a job the default max attempts, and records lease expiries in the same words', async () => {
        const seen = firstValueFrom(
          store.events('q').pipe(take(DEFAULT_MAX_ATTEMPTS), toArray(), timeout(10_000)),
        );
        await sleep(20);
        const [r] = await add([{ queue: 'q', data: 1 }]);
        for (let attempt = 1; attempt <= DEFAULT_MAX_ATTEMPTS; attempt++) {
          const [job] = (await reserve('q', 1, { leaseMs: 50 })).jobs;
          expect(job).toMatchObject({ id: r!.id, attempt, maxAttempts: DEFAULT_MAX_ATTEMPTS });
          await advance(100);
          const recovered = await firstValueFrom(store.recoverExpired('q'));
          expect(attempt < DEFAULT_MAX_ATTEMPTS ? recovered.recovered : recovered.dead).toEqual([r!.id]);
        }
        const reason = `lease expired on attempt ${DEFAULT_MAX_ATTEMPTS} of ${DEFAULT_MAX_ATTEMPTS}`;
        const rec = await store.getJob('q', r!.id);
        expect(rec).toMatchObject({ state: 'dead', reason, maxAttempts: DEFAULT_MAX_ATTEMPTS });
        expect(rec?.errors).toHaveLength(DEFAULT_MAX_ATTEMPTS);
        expect(rec?.errors[0]).toEqual({
          name: 'LeaseExpiredError',
          message: 'lease expired on attempt 1: the worker crashed or stalled',
          attempt: 1,
          at: expect.any(Number) as number,
        });
        const events = await seen;
        expect(events.map((e) => e.kind)).toEqual([
          ...Array.from({ length: DEFAULT_MAX_ATTEMPTS - 1 }, () => 'retrying'),
          'dead',
        ]);
        expect(events[0]).toMatchObject({
          error: {
            name: 'LeaseExpiredError',
            message: 'lease expired on attempt 1: the worker crashed or stalled',
          },
        });
        expect(events[DEFAULT_MAX_ATTEMPTS - 1]).toMatchObject({
          reason,
          error: { name: 'LeaseExpiredError' },
        });
      });

      it('extends live leases and reports lost ones', async () => {
        await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        const [a, b] = (await reserve('q', 2, { leaseMs: 200 })).jobs;
        await settleAll([{ ...base(b!), kind: 'completed', result: null, durationMs: 1 }]);
        await advance(100);
        const ext = await firstValueFrom(
          store.extendLeases('q', [base(a!), base(b!), { id: a!.id, token: 'forged' }], 1000),
        );
        expect(ext.extended).toEqual([a!.id]);
        expect(ext.lost).toEqual([b!.id, a!.id]);
        await advance(200); // past the original deadline, within the extension
        expect((await firstValueFrom(store.recoverExpired('q'))).recovered).toEqual([]);
      });
    });

    describe('job progress and logs', () => {
      it('records progress and a bounded log while the lease holds, and publishes each report', async () => {
        await add([{ queue: 'q', data: 1 }]);
        const [job] = (await reserve('q', 1)).jobs;
        const seen = firstValueFrom(store.jobUpdates!('q').pipe(take(2), toArray(), timeout(5000)));
        await sleep(50);
        const lease = { id: job!.id, token: job!.lease.token };
        expect(await store.updateJob!('q', lease, { progress: 10, log: ['starting'] })).toBe(true);
        const many = Array.from({ length: MAX_JOB_LOG_LINES + 5 }, (_, i) => `line ${i}`);
        expect(await store.updateJob!('q', lease, { progress: { done: 3, of: 4 }, log: many })).toBe(true);
        const record = await store.getJob('q', job!.id);
        expect(record?.progress).toEqual({ done: 3, of: 4 });
        expect(record?.logs).toHaveLength(MAX_JOB_LOG_LINES);
        expect(record?.logs?.[0]).toBe('line 5');
        expect(record?.logs?.[MAX_JOB_LOG_LINES - 1]).toBe(`line ${MAX_JOB_LOG_LINES + 4}`);
        const [first, second] = await seen;
        expect(first).toMatchObject({ queue: 'q', id: job!.id, progress: 10, log: ['starting'] });
        expect(second).toMatchObject({ progress: { done: 3, of: 4 } });
        expect(second?.log).toHaveLength(MAX_JOB_LOG_LINES + 5);
        // Outcome readers never see progress reports.
        const outcomes = firstValueFrom(store.events('q').pipe(take(1), timeout(5000)));
        await sleep(50);
        await store.updateJob!('q', lease, { log: ['one more'] });
        await settleAll([{ ...base(job!), kind: 'completed', result: 'ok', durationMs: 1 }]);
        expect(await outcomes).toMatchObject({ kind: 'completed', id: job!.id });
        const done = await store.getJob('q', job!.id);
        expect(done?.logs?.[MAX_JOB_LOG_LINES - 1]).toBe('one more');
      });

      it('refuses reports without the lease, and bad reports, writing nothing', async () => {
        await add([{ queue: 'q', data: 1 }]);
        const [job] = (await reserve('q', 1)).jobs;
        const lease = { id: job!.id, token: job!.lease.token };
        expect(await store.updateJob!('q', { ...lease, token: 'not-mine' }, { progress: 1 })).toBe(false);
        expect(await store.updateJob!('q', { id: 'missing', token: 'x' }, { progress: 1 })).toBe(false);
        for (const update of [
          { progress: Number.NaN },
          { progress: 'half' },
          { progress: { blob: 'x'.repeat(MAX_PROGRESS_BYTES) } },
          { log: [42] },
        ]) {
          await expect(store.updateJob!('q', lease, update as never)).rejects.toMatchObject({
            code: 'ERR_SLUICE_INVALID_ARGUMENT',
          });
        }
        expect(await store.getJob('q', job!.id)).not.toHaveProperty('progress');
        await settleAll([{ ...base(job!), kind: 'completed', result: null, durationMs: 1 }]);
        expect(await store.updateJob!('q', lease, { progress: 100 })).toBe(false);
        const record = await store.getJob('q', job!.id);
        expect(record).not.toHaveProperty('progress');
        expect(record).not.toHaveProperty('logs');
      });
    });

    describe('cancel', () => {
      it('cancels waiting jobs, signals running ones, and reports finished or missing ones', async () => {
        const [a, b] = await add([
          { queue: 'q', data: 1 },
          { queue: 'q', data: 2, priority: 9 },
        ]);
        expect(await store.cancel('q', b!.id)).toBe('cancelled');
        expect((await store.getJob('q', b!.id))?.state).toBe('cancelled');
        const signals = firstValueFrom(store.cancellations('q').pipe(take(1), timeout(2000)));
        await sleep(20);
        const [running] = (await reserve('q', 5)).jobs;
        expect(running?.id).toBe(a!.id); // b is not reserved: it was cancelled
        expect(await store.cancel('q', a!.id)).toBe('signalled');
        await expect(signals).resolves.toBe(a!.id);
        await settleAll([{ ...base(running!), kind: 'cancelled', reason: 'cancelled by request' }]);
        expect(await store.cancel('q', a!.id)).toBe('finished');
        expect(await store.cancel('q', 'missing')).toBe('not-found');
      });
    });

    describe('cancel before it runs', () => {
      it('records the same reason and event for a waiting job on every store', async () => {
        const seen = firstValueFrom(store.events('q').pipe(take(2), toArray(), timeout(2000)));
        await sleep(20);
        const [ready, scheduled] = await add([
          { queue: 'q', data: 1 },
          { queue: 'q', data: 2, delayMs: 60_000 },
        ]);
        expect(await store.cancel('q', ready!.id)).toBe('cancelled');
        expect(await store.cancel('q', scheduled!.id)).toBe('cancelled');
        for (const { id } of [ready!, scheduled!]) {
          expect(await store.getJob('q', id)).toMatchObject({
            state: 'cancelled',
            reason: 'cancelled before it ran',
          });
        }
        const events = await seen;
        expect(events).toEqual([
          expect.objectContaining({ id: ready!.id, kind: 'cancelled', reason: 'cancelled before it ran' }),
          expect.objectContaining({
            id: scheduled!.id,
            kind: 'cancelled',
            reason: 'cancelled before it ran',
          }),
        ]);
      });
    });

    describe('pause, resume and settings', () => {
      it('reserves nothing while paused and publishes the settings', async () => {
        const seen = firstValueFrom(store.settings('q').pipe(take(3), toArray(), timeout(3000)));
        await sleep(20);
        await add([{ queue: 'q', data: 1 }]);
        await store.pause('q');
        const paused = await reserve('q', 1);
        expect(paused).toMatchObject({ paused: true, jobs: [] });
        expect((await store.stats('q')).paused).toBe(true);
        await store.resume('q');
        expect((await reserve('q', 1)).jobs).toHaveLength(1);
        expect((await seen).map((s) => s.paused)).toEqual([false, true, false]);
      });

      it('publishes a concurrency override and its removal', async () => {
        const seen = firstValueFrom(store.settings('q').pipe(take(3), toArray(), timeout(3000)));
        await sleep(20);
        await store.setConcurrency('q', 7);
        await store.setConcurrency('q', undefined);
        expect((await seen).map((s) => s.concurrency)).toEqual([undefined, 7, undefined]);
        await expect(store.setConcurrency('q', 0)).rejects.toThrow();
      });
    });

    describe('rate limit', () => {
      it('never grants more than allowed in a window and says when to come back', async () => {
        await add(Array.from({ length: 12 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 5, periodMs: 500 };
        const first = await reserve('q', 10, { limit });
        expect(first.jobs).toHaveLength(5);
        expect(first.retryAfterMs).toBeGreaterThan(0);
        expect(first.retryAfterMs).toBeLessThanOrEqual(500 * k);
        const blocked = await reserve('q', 10, { limit });
        expect(blocked.jobs).toHaveLength(0);
        expect(blocked.retryAfterMs).toBeGreaterThan(0);
        await advance(550);
        expect((await reserve('q', 10, { limit })).jobs).toHaveLength(5);
      });

      it('shares one limit between queues that name the same key', async () => {
        await add([
          ...Array.from({ length: 5 }, () => ({ queue: 'a', data: 1 })),
          ...Array.from({ length: 5 }, () => ({ queue: 'b', data: 1 })),
        ]);
        const limit = { key: 'provider', allowed: 4, periodMs: 1000 };
        const a = await reserve('a', 3, { limit });
        const b = await reserve('b', 3, { limit });
        expect(a.jobs.length + b.jobs.length).toBe(4);
      });

      it('counts handler calls when the limit is per call', async () => {
        await add(Array.from({ length: 20 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 2, periodMs: 1000, per: 'call' as const, jobsPerCall: 3 };
        const first = await reserve('q', 20, { limit });
        expect(first.jobs).toHaveLength(6);
        expect((await reserve('q', 20, { limit })).jobs).toHaveLength(0);
      });

      it('moves late units to a new slot, so the limit holds for when work really started', async () => {
        expect(store.rebaseLimit).toBeDefined();
        const rebase = store.rebaseLimit!.bind(store);
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 5, periodMs: 500 * k };
        const first = await reserve('q', 5, { limit });
        expect(first.jobs).toHaveLength(5);
        const grantedAt = first.jobs[0]!.lease.startedAt;
        expect(first.slots).toEqual([{ at: grantedAt, jobs: 5 }]);
        await advance(150); // the handlers start late
        const moved = await firstValueFrom(rebase('q', limit, grantedAt, 5));
        expect(moved.at).toBe(moved.now); // the window had room at once
        expect(moved.at - grantedAt).toBeGreaterThanOrEqual(150 * k);
        await advance(400); // 550 ms after the grant: free without the move, not with it
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(0);
        await advance(150);
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(5);
      });

      it('moves a late unit in place, ahead of slots granted later, where every window keeps within the limit', async () => {
        const rebase = store.rebaseLimit!.bind(store);
        await add(Array.from({ length: 20 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 4, periodMs: 1000 * k };
        const t0 = slotsOf(await reserve('q', 2, { limit }))[0]!;
        await advance(100);
        const t1 = slotsOf(await reserve('q', 2, { limit }))[0]!;
        // The window is full: two more go where t0's leave it, far ahead of now.
        const later = slotsOf(await reserve('q', 2, { limit, limitAheadMs: 2000 * k }));
        expect(later).toEqual([t0 + 1000 * k, t0 + 1000 * k]);
        await advance(50);
        // One of t1's units ran late: it moves to a lead after now, before the later slots (after
        // them it would have waited for them), and its old place is freed.
        const moved = await firstValueFrom(rebase('q', limit, t1, 1, 20 * k));
        expect(moved.at).toBe(moved.now + 20 * k);
        expect(moved.at).toBeLessThan(t0 + 1000 * k);
        // Every slot granted from here on keeps every window within the limit, the moved one counted.
        const more = slotsOf(await reserve('q', 10, { limit, limitAheadMs: 3000 * k }));
        const all = [t0, t0, t1, moved.at, ...later, ...more];
        expect(maxInAnyWindow(all, 1000 * k)).toBeLessThanOrEqual(4);
        expect(more[0]).toBe(t1 + 1000 * k); // the unit left at t1 frees first
        // A move that would crowd a window is not made in place: with every unit after t1 counted
        // (the moved one, two later ones and the new ones), the unit left at t1 goes after them.
        const crowded = await firstValueFrom(rebase('q', limit, t1, 1, 0));
        expect(crowded.at).toBeGreaterThanOrEqual(Math.max(...more));
        expect(
          maxInAnyWindow([t0, t0, moved.at, crowded.at, ...later, ...more], 1000 * k),
        ).toBeLessThanOrEqual(4);
      });

      it('moves a late unit onto a slot among granted ones, every window still within the limit', async () => {
        const rebase = store.rebaseLimit!.bind(store);
        await add(Array.from({ length: 60 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 20, periodMs: 1000 * k };
        const t0 = slotsOf(await reserve('q', 1, { limit }))[0]!;
        await advance(5);
        // 15 slots a ms apart, 40 to 54 ms ahead of now.
        const spread = { limit, limitLeadMs: 40 * k, limitAheadMs: 100 * k, limitSpread: true };
        const granted = slotsOf(await reserve('q', 15, spread));
        expect(granted).toHaveLength(15);
        // t0's unit ran late: moved 47 ms ahead, onto one of those slots (or beside them).
        const moved = await firstValueFrom(rebase('q', limit, t0, 1, 47 * k));
        expect(moved.at).toBe(moved.now + 47 * k);
        // The log counts every unit where it now is: filling every window to the limit from here
        // on puts no more than 20 in any.
        const more = slotsOf(await reserve('q', 40, { limit, limitAheadMs: 3000 * k }));
        expect(more.length).toBeGreaterThanOrEqual(20);
        expect(maxInAnyWindow([moved.at, ...granted, ...more], 1000 * k)).toBeLessThanOrEqual(20);
        // And holds each of them once (units ahead of now included).
        expect(await store.rateLimitUsage!('q', 'q', 1000 * k)).toBe(1 + granted.length + more.length);
      });

      it('gives back units handed back at their slot, and only those recorded there', async () => {
        expect(store.refundLimit).toBeDefined();
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 5, periodMs: 1000 * k };
        const t0 = (await reserve('q', 5, { limit })).slots![0]!.at;
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(0); // the window is full
        // Nothing recorded a millisecond later: nothing changes.
        await firstValueFrom(store.refundLimit!('q', limit, t0 + 1, 2), { defaultValue: undefined });
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(0);
        // Two units of t0 never ran: two more may go now.
        await firstValueFrom(store.refundLimit!('q', limit, t0, 2), { defaultValue: undefined });
        const again = await reserve('q', 5, { limit });
        expect(again.jobs).toHaveLength(2);
        expect(await store.rateLimitUsage!('q', 'q', 1000 * k)).toBe(5);
      });

      it('tells the store clock that stamps grants, moving with time', async () => {
        expect(store.storeTime).toBeDefined();
        const time = () => firstValueFrom(store.storeTime!('q'));
        await add([{ queue: 'q', data: 1 }]);
        const before = await time();
        const granted = (await reserve('q', 1, { limit: { allowed: 5, periodMs: 1000 } })).jobs[0]!;
        const after = await time();
        expect(granted.lease.startedAt).toBeGreaterThanOrEqual(before);
        expect(granted.lease.startedAt).toBeLessThanOrEqual(after);
        await advance(100);
        expect((await time()) - after).toBeGreaterThanOrEqual(100 * k);
      });

      it('places a moved unit a lead ahead of now, all its units at one slot with room for them', async () => {
        const rebase = store.rebaseLimit!.bind(store);
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 5, periodMs: 500 * k };
        const t0 = (await reserve('q', 3, { limit })).jobs[0]!.lease.startedAt;
        await advance(100);
        const t1 = (await reserve('q', 2, { limit })).jobs[0]!.lease.startedAt;
        // Three units leave t0 and go 50 ms ahead of now: the window holds 2 + 3.
        const ahead = await firstValueFrom(rebase('q', limit, t0, 3, 50 * k));
        expect(ahead.at - ahead.now).toBe(50 * k);
        // Two units of nowhere (their grant long gone) need room for both at once: when t1's leave.
        const both = await firstValueFrom(rebase('q', limit, 0, 2));
        expect(both.at).toBe(t1 + 500 * k);
      });

      it('grants slots ahead of now when the window is full, as far as aheadMs allows', async () => {
        await add(Array.from({ length: 20 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 5, periodMs: 500 * k };
        const t0 = (await reserve('q', 5, { limit })).jobs[0]!.lease.startedAt;
        await advance(400);
        // The window has room again at t0 + 500: a reach of a quarter of what is left falls short
        // (read on the store's clock: a loaded machine may have slept longer than asked).
        const left = t0 + 500 * k - (await firstValueFrom(store.storeTime!('q')));
        const reach = Math.max(1, Math.floor(left / 4));
        const short = await reserve('q', 5, { limit, limitAheadMs: reach });
        const [first] = short.jobs;
        if (first) {
          // A loaded machine stalled between reading the clock and the reserve long enough to bring
          // the window's room within reach: then the jobs are granted there, never before.
          expect(first.lease.startedAt + reach).toBeGreaterThanOrEqual(t0 + 500 * k);
          for (const slot of short.slots ?? []) expect(slot.at).toBeGreaterThanOrEqual(t0 + 500 * k);
          return;
        }
        expect(short.jobs).toHaveLength(0);
        expect(short.retryAfterMs).toBeGreaterThan(0);
        expect(short.retryAfterMs).toBeLessThanOrEqual(left);
        const ahead = await reserve('q', 5, { limit, limitAheadMs: left + 300 * k });
        expect(ahead.jobs).toHaveLength(5);
        expect(ahead.slots).toEqual([{ at: t0 + 500 * k, jobs: 5 }]);
        // A lead puts slots of an empty window that far ahead of the store's now.
        await advance(1200);
        const led = await reserve('q', 2, { limit, limitLeadMs: 30 * k, limitAheadMs: 60 * k });
        expect(led.slots).toEqual([{ at: led.jobs[0]!.lease.startedAt + 30 * k, jobs: 2 }]);
      });

      it('lets a caller place slots as far ahead as any caller of the limit did lately, so a quick one is not starved', async () => {
        await add(Array.from({ length: 20 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 5, periodMs: 500 * k };
        const t0 = (await reserve('q', 5, { limit })).jobs[0]!.lease.startedAt;
        await advance(400);
        // A slow caller looks 300 ahead and takes 2 of the 5 units freeing at t0 + 500 (or at the
        // store's now, if a loaded machine slept past it).
        const far = await reserve('q', 2, { limit, limitAheadMs: 300 * k });
        const afterFar = await firstValueFrom(store.storeTime!('q'));
        expect(far.slots).toHaveLength(1);
        expect(far.slots![0]!.jobs).toBe(2);
        expect(far.slots![0]!.at).toBeGreaterThanOrEqual(t0 + 500 * k);
        expect(far.slots![0]!.at).toBeLessThanOrEqual(Math.max(t0 + 500 * k, afterFar));
        // A quick one asking only 20 ahead still reaches the other 3 (alone it would wait for them
        // to come within 20, and find them taken by callers looking further).
        const near = await reserve('q', 5, { limit, limitAheadMs: 20 * k });
        const after = await firstValueFrom(store.storeTime!('q'));
        expect(near.jobs).toHaveLength(3);
        // At t0 + 500 (a loaded machine may have let the store's clock pass it: then at its now).
        expect(near.slots).toHaveLength(1);
        expect(near.slots![0]!.jobs).toBe(3);
        expect(near.slots![0]!.at).toBeGreaterThanOrEqual(t0 + 500 * k);
        expect(near.slots![0]!.at).toBeLessThanOrEqual(Math.max(t0 + 500 * k, after));
      });

      it("spreads a reserve's slots a millisecond apart when asked (limitSpread), the rate per ms at each", async () => {
        await add(Array.from({ length: 30 }, (_, n) => ({ queue: 'q', data: n })));
        // At most 1 a millisecond: each unit a millisecond after the one before.
        const limit = { allowed: 400, periodMs: 1000 * k };
        const lead = { limitLeadMs: 30 * k, limitAheadMs: 60 * k };
        const spread = await reserve('q', 5, { limit, ...lead, limitSpread: true });
        const first = spread.slots?.[0]?.at ?? Number.NaN;
        expect(first).toBeGreaterThanOrEqual(spread.jobs[0]!.lease.startedAt + 30 * k);
        expect(spread.slots).toEqual([0, 1, 2, 3, 4].map((i) => ({ at: first + i, jobs: 1 })));
        // Without it, every unit goes to the first time with room: one slot (not before the newest).
        const bunched = await reserve('q', 5, { limit, ...lead });
        expect(bunched.slots).toHaveLength(1);
        expect(bunched.slots?.[0]?.jobs).toBe(5);
        // A rate above one a millisecond puts that many (rounded up) at each: 2,500 a second, 3.
        const fast = { allowed: 2500 * k, periodMs: 1000 * k, key: 'fast' };
        const wide = await reserve('q', 7, { limit: fast, ...lead, limitSpread: true });
        const at = wide.slots?.[0]?.at ?? Number.NaN;
        expect(wide.slots).toEqual([
          { at, jobs: 3 },
          { at: at + 1, jobs: 3 },
          { at: at + 2, jobs: 1 },
        ]);
      });

      it('splits a reserve over the slots as they free, whole calls to a slot under per-call limits', async () => {
        await add(Array.from({ length: 20 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 2, periodMs: 1000 * k, per: 'call' as const, jobsPerCall: 3 };
        const t0 = (await reserve('q', 3, { limit })).jobs[0]!.lease.startedAt;
        await advance(100);
        const next = await reserve('q', 6, { limit, limitAheadMs: 2000 * k });
        const t1 = next.jobs[0]!.lease.startedAt;
        expect(next.jobs).toHaveLength(6);
        expect(next.slots).toEqual([
          { at: t1, jobs: 3 },
          { at: t0 + 1000 * k, jobs: 3 },
        ]);
      });

      it('pauses a limit: no unit is placed before the pause ends, and every listener hears of it', async () => {
        expect(store.pauseLimit).toBeDefined();
        const pause = store.pauseLimit!.bind(store);
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { allowed: 100, periodMs: 1000 * k };
        const heard: number[] = [];
        const listening = store.limitPauses!('q', limit).subscribe((until) => heard.push(until));
        try {
          await advance(50); // the subscription is in place
          const p = await firstValueFrom(pause('q', limit, 300 * k));
          expect(p.until - p.now).toBe(300 * k);
          // A shorter pause does not shorten it.
          expect((await firstValueFrom(pause('q', limit, 10 * k))).until).toBe(p.until);
          // Reserves place nothing before its end, as far ahead as they may look.
          const near = await reserve('q', 2, { limit, limitAheadMs: 100 * k });
          expect(near.jobs).toHaveLength(0);
          expect(near.retryAfterMs).toBeGreaterThan(0);
          const far = await reserve('q', 2, { limit, limitAheadMs: 1000 * k });
          expect(far.slots).toEqual([{ at: p.until, jobs: 2 }]);
          // Moves too.
          const moved = await firstValueFrom(store.rebaseLimit!('q', limit, 0, 1));
          expect(moved.at).toBeGreaterThanOrEqual(p.until);
          await advance(50);
          expect(heard).toContain(p.until);
        } finally {
          listening.unsubscribe();
        }
      });

      it("checks store-wide numbers over every caller's while they are set, and each caller's own again once cleared", async () => {
        expect(store.setRateLimit).toBeDefined();
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const limit = { key: 'k', allowed: 5, periodMs: 1000 * k, marginMs: 0 };
        await store.setRateLimit!('q', 'k', { allowed: 2, periodMs: 1000 * k });
        expect(await store.getRateLimit!('q', 'k')).toEqual({ allowed: 2, periodMs: 1000 * k });
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(2);
        await store.setRateLimit!('q', 'k', null);
        expect(await store.getRateLimit!('q', 'k')).toBeNull();
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(3); // 5 in the window, as asked
      });

      it('lets callers share a key with other numbers (a rolling deploy): each reserve checks its own', async () => {
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const old = { key: 'k', allowed: 3, periodMs: 1000 * k };
        const fresh = { key: 'k', allowed: 5, periodMs: 1000 * k };
        expect((await reserve('q', 5, { limit: old })).jobs).toHaveLength(3);
        expect((await reserve('q', 5, { limit: fresh })).jobs).toHaveLength(2);
        expect((await reserve('q', 5, { limit: old })).jobs).toHaveLength(0);
        // A longer window sees every unit a shorter one placed.
        expect(
          (await reserve('q', 5, { limit: { key: 'k', allowed: 5, periodMs: 5000 * k } })).jobs,
        ).toHaveLength(0);
      });

      it("widens every caller's window to the widest margin a caller of the key asked for lately", async () => {
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        // A worker whose requests leave late asks for a margin of 300; one whose leave early, 10.
        const wide = { key: 'm', allowed: 1, periodMs: 1300 * k, marginMs: 300 * k };
        const narrow = { key: 'm', allowed: 1, periodMs: 1010 * k, marginMs: 10 * k };
        const first = await reserve('q', 1, { limit: wide });
        const t0 = first.slots![0]!.at;
        // The narrow caller's unit keeps clear of the wide caller's by the wide margin.
        const next = await reserve('q', 1, { limit: narrow, limitAheadMs: 3000 * k });
        expect(next.slots).toEqual([{ at: t0 + 1300 * k, jobs: 1 }]);
        // Store-wide numbers keep the widest margin too.
        await store.setRateLimit!('q', 'm', { allowed: 1, periodMs: 500 * k });
        const third = await reserve('q', 1, { limit: narrow, limitAheadMs: 3000 * k });
        expect(third.slots).toEqual([{ at: t0 + 1300 * k + 800 * k, jobs: 1 }]);
      });

      it('checks several limits in one step: a unit goes where every one has room, at the same slot', async () => {
        await add(Array.from({ length: 12 }, (_, n) => ({ queue: 'q', data: n })));
        const daily = { key: 'day', allowed: 5, periodMs: 20_000 * k };
        const limit = { key: 'sec', allowed: 3, periodMs: 1000 * k, also: [daily] };
        const first = await reserve('q', 10, { limit });
        expect(first.jobs).toHaveLength(3);
        const t0 = first.slots![0]!.at;
        expect(first.retryAfterMs).toBeGreaterThan(0);
        // The short window frees a second later; the long one has room for 2 more only.
        const next = await reserve('q', 10, { limit, limitAheadMs: 1500 * k });
        expect(next.jobs).toHaveLength(2);
        expect(next.slots).toEqual([{ at: t0 + 1000 * k, jobs: 2 }]);
        expect((await reserve('q', 10, { limit, limitAheadMs: 5000 * k })).jobs).toHaveLength(0);
        // Another pipeline counting only the long limit's key shares its count.
        expect((await reserve('q', 10, { limit: daily })).jobs).toHaveLength(0);
        // A move goes to one slot where both have room: the long window has none left for 20 s.
        const moved = await firstValueFrom(store.rebaseLimit!('q', limit, t0 + 1000 * k, 1, 0));
        expect(moved.at).toBe(t0 + 1000 * k); // its own place, freed by the move, is the first with room
        expect(await store.rateLimitUsage!('q', 'day', 20_000 * k)).toBe(5);
      });

      it('spends a job’s cost, all at one slot, in order; a cost above allowed takes a whole window', async () => {
        const costs = [2, 3, 1, 4, 9, 1];
        await add(costs.map((cost, n) => ({ queue: 'q', data: n, cost })));
        const limit = { allowed: 5, periodMs: 1000 * k };
        const first = await reserve('q', 10, { limit });
        expect(first.jobs.map((j) => j.data)).toEqual([0, 1]); // 2 + 3
        expect(first.jobs.map((j) => j.cost)).toEqual([2, 3]);
        const t0 = first.slots![0]!.at;
        // The rest wait their turn, in order: 1 + 4 in the next window, then 9 (as 5) alone.
        const next = await reserve('q', 10, { limit, limitAheadMs: 2500 * k });
        expect(next.jobs.map((j) => j.data)).toEqual([2, 3, 4]);
        expect(next.slots).toEqual([
          { at: t0 + 1000 * k, jobs: 2 },
          { at: t0 + 2000 * k, jobs: 1 },
        ]);
        expect((await store.getJob('q', next.jobs[2]!.id))?.cost).toBe(9);
        // Limits that count calls ignore costs.
        const calls = await reserve('q', 10, {
          limit: { key: 'c', allowed: 1, periodMs: 1000 * k, per: 'call', jobsPerCall: 5 },
        });
        expect(calls.jobs.map((j) => j.data)).toEqual([5]);
        await expect(add([{ queue: 'q', data: 0, cost: 0 }])).rejects.toThrow(
          /cost must be an integer from 1/,
        );
      });

      it('does not spend the limit when the queue is empty', async () => {
        const limit = { allowed: 2, periodMs: 60_000 };
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(0);
        await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        expect((await reserve('q', 5, { limit })).jobs).toHaveLength(2);
      });
    });

    describe('global concurrency', () => {
      it('leases at most maxActive jobs of a queue at once, across callers, freeing room as they settle or are recovered', async () => {
        await add(Array.from({ length: 10 }, (_, n) => ({ queue: 'q', data: n })));
        const a = await reserve('q', 5, { maxActive: 3, leaseMs: 100 });
        expect(a.jobs).toHaveLength(3);
        // Another worker: nothing left, and a hint to look again soon.
        const b = await reserve('q', 5, { maxActive: 3 });
        expect(b.jobs).toHaveLength(0);
        expect(b.nextCheckInMs).toBe(ACTIVE_CAP_CHECK_MS);
        await settleAll([{ ...base(a.jobs[0]!), kind: 'completed', result: null, durationMs: 1 }]);
        expect((await reserve('q', 5, { maxActive: 3 })).jobs).toHaveLength(1);
        // A crashed holder's leases come back with recovery, and so does their room.
        await advance(150);
        expect((await firstValueFrom(store.recoverExpired('q'))).recovered).toHaveLength(2);
        expect((await reserve('q', 5, { maxActive: 3 })).jobs).toHaveLength(2);
        // Without the cap the rest goes at once.
        expect((await reserve('q', 10)).jobs).toHaveLength(6);
      });
    });

    describe('fill', () => {
      it('waits for a full batch or for the first job to have waited long enough', async () => {
        await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        const fill = { count: 5, waitMs: 200 };
        const early = await reserve('q', 10, { fill });
        expect(early.jobs).toHaveLength(0);
        expect(early.nextCheckInMs).toBeGreaterThan(0);
        await advance(250);
        expect((await reserve('q', 10, { fill })).jobs).toHaveLength(2);
        await add([1, 2, 3, 4, 5].map((n) => ({ queue: 'q', data: n })));
        expect((await reserve('q', 10, { fill })).jobs).toHaveLength(5);
      });

      it('reserves whole batches only until the first job has waited', async () => {
        await add(Array.from({ length: 12 }, (_, n) => ({ queue: 'q', data: n })));
        const fill = { count: 5, waitMs: 200 };
        expect((await reserve('q', 20, { fill })).jobs).toHaveLength(10);
        expect((await reserve('q', 20, { fill })).jobs).toHaveLength(0);
        await advance(250);
        expect((await reserve('q', 20, { fill })).jobs).toHaveLength(2);
      });
    });

    describe('drain and obliterate', () => {
      /** One job in each state of queue `q`: ready, scheduled, running, completed, dead, cancelled. */
      const fillEveryState = async () => {
        await store.setQueueConfig('q', { schema: { type: 'object' } });
        await add([
          { queue: 'q', data: { n: 'run' } },
          { queue: 'q', data: { n: 'done' } },
          { queue: 'q', data: { n: 'dead' } },
        ]);
        const [run, done, dead] = (await reserve('q', 3)).jobs;
        await settleAll([
          { ...base(done!), kind: 'completed', result: 1, durationMs: 1 },
          { ...base(dead!), kind: 'dead', reason: 'gone' },
        ]);
        const [ready, later, cancelled] = await add([
          { queue: 'q', data: { n: 'ready' }, unique: { key: 'u1', ttlMs: 60_000 } },
          { queue: 'q', data: { n: 'later' }, delayMs: 60_000, unique: { key: 'u2', ttlMs: 60_000 } },
          { queue: 'q', data: { n: 'cancelled' }, priority: 5 },
        ]);
        expect(await store.cancel('q', cancelled!.id)).toBe('cancelled');
        return { run: run!, ready: ready!.id, later: later!.id };
      };

      it('drains ready and scheduled jobs only, releasing their unique keys', async () => {
        const { run, ready, later } = await fillEveryState();
        await add([{ queue: 'q', data: { n: 'low' }, priority: 9 }]);
        await add([{ queue: 'other', data: 1 }]);
        expect(await store.drain!('q')).toBe(3);
        expect(await store.getJob('q', ready)).toBeUndefined();
        expect(await store.getJob('q', later)).toBeUndefined();
        const { counts, totals } = await store.stats('q');
        expect(counts).toEqual({ ready: 0, scheduled: 0, running: 1, completed: 1, dead: 1, cancelled: 1 });
        expect(totals.enqueued).toBe(7);
        expect(await store.listJobs('q', JobState.Ready)).toEqual([]);
        expect(await store.listJobs('q', JobState.Scheduled)).toEqual([]);
        expect((await store.getJob('q', run.id))?.state).toBe(JobState.Running);
        // The running job settles as usual, other queues are untouched.
        const [settled] = await settleAll([{ ...base(run), kind: 'completed', result: 2, durationMs: 1 }]);
        expect(settled).toMatchObject({ applied: true });
        expect((await store.stats('other')).counts.ready).toBe(1);
        // The unique keys of the deleted jobs are free again; the queue works on.
        const [again] = await add([
          { queue: 'q', data: { n: 'again' }, unique: { key: 'u1', ttlMs: 60_000 } },
        ]);
        expect(again?.duplicate).toBe(false);
        expect((await reserve('q', 5)).jobs.map((j) => j.data)).toEqual([{ n: 'again' }]);
        expect(await store.drain!('q')).toBe(0);
        expect(await store.drain!('never-used')).toBe(0);
      });

      it('refuses to obliterate a queue with running jobs unless forced, deleting nothing', async () => {
        const { run, ready } = await fillEveryState();
        const before = await store.stats('q');
        await expect(store.obliterate!('q')).rejects.toMatchObject({
          name: 'QueueBusyError',
          code: 'ERR_SLUICE_QUEUE_BUSY',
          queue: 'q',
          running: 1,
        });
        expect(await store.stats('q')).toEqual(before);
        expect((await store.getJob('q', ready))?.state).toBe(JobState.Ready);
        expect((await store.getQueueConfig('q')).schema).toEqual({ type: 'object' });
        // Once the running job is settled the queue can go.
        await settleAll([{ ...base(run), kind: 'completed', result: 2, durationMs: 1 }]);
        expect(await store.obliterate!('q')).toEqual({ jobs: 6, running: 0 });
      });

      it('obliterates a whole queue; using the name again starts an empty queue', async () => {
        await add([{ queue: 'other', data: 1 }]);
        const { run, ready, later } = await fillEveryState();
        await settleAll([{ ...base(run), kind: 'completed', result: 2, durationMs: 1 }]);
        await store.pause('q');
        await store.setConcurrency('q', 3);
        expect(await store.obliterate!('q')).toEqual({ jobs: 6, running: 0 });
        expect(await store.queues()).not.toContain('q');
        expect(await store.queues()).toContain('other');
        for (const id of [run.id, ready, later]) expect(await store.getJob('q', id)).toBeUndefined();
        for (const state of Object.values(JobState)) expect(await store.listJobs('q', state)).toEqual([]);
        expect(await store.getQueueConfig('q')).toEqual({});
        expect(await store.obliterate!('q')).toEqual({ jobs: 0, running: 0 });
        expect((await store.stats('other')).counts.ready).toBe(1);

        const [fresh] = await add([{ queue: 'q', data: { n: 'new' }, unique: { key: 'u2', ttlMs: 60_000 } }]);
        expect(fresh?.duplicate).toBe(false);
        const stats = await store.stats('q');
        expect(stats.paused).toBe(false);
        expect(stats.counts).toEqual({
          ready: 1,
          scheduled: 0,
          running: 0,
          completed: 0,
          dead: 0,
          cancelled: 0,
        });
        expect(stats.totals).toMatchObject({ enqueued: 1, completed: 0, dead: 0, cancelled: 0 });
        expect(await store.queues()).toContain('q');
        expect((await reserve('q', 5)).jobs.map((j) => j.data)).toEqual([{ n: 'new' }]);
      });

      it("obliterates with force: running jobs' workers are told, and what they send later changes nothing", async () => {
        await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        const [job] = (await reserve('q', 1)).jobs;
        const signals = firstValueFrom(store.cancellations('q').pipe(take(1), timeout(2000)));
        await sleep(20);
        expect(await store.obliterate!('q', { force: true })).toEqual({ jobs: 2, running: 1 });
        await expect(signals).resolves.toBe(job!.id);
        const lease = { id: job!.id, token: job!.lease.token };
        expect(await firstValueFrom(store.extendLeases('q', [lease], 10_000))).toEqual({
          extended: [],
          lost: [job!.id],
        });
        expect(await store.updateJob!('q', lease, { progress: 50, log: ['late'] })).toBe(false);
        for (const late of [
          { ...base(job!), kind: 'completed' as const, result: 'late', durationMs: 1 },
          { ...base(job!), kind: 'retrying' as const, delayMs: 0, error: { name: 'E', message: 'x' } },
          { ...base(job!), kind: 'dead' as const, reason: 'late' },
        ]) {
          expect(await settleAll([late])).toEqual([{ id: job!.id, applied: false, reason: 'not-found' }]);
        }
        expect(await firstValueFrom(store.recoverExpired('q'))).toEqual({ recovered: [], dead: [] });
        expect(await store.getJob('q', job!.id)).toBeUndefined();
        expect(await store.queues()).not.toContain('q');
        for (const state of Object.values(JobState)) expect(await store.listJobs('q', state)).toEqual([]);
      });
    });

    describe('inspection and administration', () => {
      it('lists jobs by state, in order, with pagination', async () => {
        await add([
          { queue: 'q', data: 'low', priority: 9 },
          { queue: 'q', data: 'a' },
          { queue: 'q', data: 'b' },
          { queue: 'q', data: 'later', delayMs: 60_000 },
        ]);
        const ready = await store.listJobs('q', JobState.Ready);
        expect(ready.map((j) => j.data)).toEqual(['a', 'b', 'low']);
        expect(
          (await store.listJobs('q', JobState.Ready, { offset: 1, limit: 1 })).map((j) => j.data),
        ).toEqual(['b']);
        expect((await store.listJobs('q', JobState.Scheduled)).map((j) => j.data)).toEqual(['later']);
        await reserve('q', 1);
        expect((await store.listJobs('q', JobState.Running)).map((j) => j.data)).toEqual(['a']);
        expect(await store.listJobs('missing-queue', JobState.Ready)).toEqual([]);
      });

      it('filters listings by name and by the time of the state, paging over the matches', async () => {
        const ids: string[] = [];
        for (const name of ['a', 'b', 'a', undefined, 'a']) {
          const [r] = await add([{ queue: 'q', data: ids.length, ...(name ? { name } : {}) }]);
          ids.push(r!.id);
          await advance(5);
        }
        const at = async (id: string) => (await store.getJob('q', id))!;
        const runAts = await Promise.all(ids.map(async (id) => (await at(id)).runAt));
        const list = async (options: Parameters<Store['listJobs']>[2], state: JobState = JobState.Ready) =>
          (await store.listJobs('q', state, options)).map((j) => j.data);
        expect(await list({ name: 'a' })).toEqual([0, 2, 4]);
        expect(await list({ name: 'q' })).toEqual([3]);
        expect(await list({ name: 'a', offset: 1, limit: 1 })).toEqual([2]);
        expect(await list({ name: 'a', offset: 3 })).toEqual([]);
        expect(await list({ from: runAts[1]!, to: runAts[3]! })).toEqual([1, 2, 3]);
        expect(await list({ name: 'a', from: runAts[1]! })).toEqual([2, 4]);
        expect(await list({ name: 'nobody' })).toEqual([]);

        const now = runAts[4]!;
        await add([3, 1, 2].map((h) => ({ queue: 'q', data: `in ${h}h`, runAt: now + h * 3_600_000 })));
        expect(await list({ from: now + 1_800_000, to: now + 2.5 * 3_600_000 }, JobState.Scheduled)).toEqual([
          'in 1h',
          'in 2h',
        ]);
        expect(await list({ from: now + 1_800_000, offset: 1 }, JobState.Scheduled)).toEqual([
          'in 2h',
          'in 3h',
        ]);

        const { jobs } = await reserve('q', 5);
        expect(await list({ name: 'b' }, JobState.Running)).toEqual([1]);
        const finishedAt: number[] = [];
        for (const job of jobs) {
          await settleAll([{ ...base(job), kind: 'completed', result: null, durationMs: 1 }]);
          finishedAt.push((await at(job.id)).finishedAt!);
          await advance(5);
        }
        // Newest first; the walk stops at the first job finished before `from`.
        expect(await list({ from: finishedAt[2]! }, JobState.Completed)).toEqual([4, 3, 2]);
        expect(
          await list({ from: finishedAt[1]!, to: finishedAt[3]!, name: 'a' }, JobState.Completed),
        ).toEqual([2]);
        expect(await list({ to: finishedAt[1]!, limit: 1 }, JobState.Completed)).toEqual([1]);
        expect(await list({ to: finishedAt[0]! - 1 }, JobState.Completed)).toEqual([]);

        for (const bad of [{ name: '' }, { from: Number.NaN }, { from: 10, to: 5 }]) {
          await expect(store.listJobs('q', JobState.Ready, bad)).rejects.toMatchObject({
            code: 'ERR_SLUICE_INVALID_ARGUMENT',
          });
        }
      });

      it('removes jobs that are not running', async () => {
        const [a, b] = await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        const [running] = (await reserve('q', 1)).jobs;
        expect(running?.id).toBe(a!.id);
        expect(await store.removeJob('q', a!.id)).toBe(false);
        expect(await store.removeJob('q', b!.id)).toBe(true);
        expect(await store.getJob('q', b!.id)).toBeUndefined();
        expect((await store.stats('q')).counts.ready).toBe(0);
        expect(await store.removeJob('q', 'missing')).toBe(false);
      });

      it('keeps finished jobs according to the retention', async () => {
        await store.setQueueConfig('q', { retention: { keep: 'count', count: 2 } });
        await add([1, 2, 3].map((n) => ({ queue: 'q', data: n })));
        await add([{ queue: 'q', data: 4, retention: { keep: 'none' } }]);
        const { jobs } = await reserve('q', 4);
        await settleAll(jobs.map((j) => ({ ...base(j), kind: 'completed', result: j.data, durationMs: 1 })));
        const completed = await store.listJobs('q', JobState.Completed);
        expect(completed.map((j) => j.data)).toEqual([3, 2]);
        expect(await store.getJob('q', jobs[3]!.id)).toBeUndefined();
        expect((await store.stats('q')).counts.completed).toBe(2);
        expect((await store.stats('q')).totals.completed).toBe(4);
      });

      it('lists, trims, removes and purges jobs completed together like any others', async () => {
        // Completions of one lease settled in one call, with no result: a store may keep them
        // together (RedisStore: one finished-list entry), which no reader may notice.
        await store.setQueueConfig('q', { retention: { keep: 'count', count: 5 } });
        const completeTogether = async (data: number[]): Promise<readonly ReservedJob[]> => {
          await add(data.map((n) => ({ queue: 'q', data: n })));
          const { jobs } = await reserve('q', data.length);
          expect(jobs.map((j) => j.data)).toEqual(data);
          const codes = await settleAll(
            jobs.map((j) => ({ ...base(j), kind: 'completed', result: undefined, durationMs: 1 })),
          );
          expect(codes.every((r) => r.applied)).toBe(true);
          return jobs;
        };
        const completed = async (options?: Parameters<Store['listJobs']>[2]) =>
          (await store.listJobs('q', JobState.Completed, options)).map((j) => j.data);
        const first = await completeTogether([0, 1, 2, 3, 4, 5, 6, 7]);
        // The count bound cuts the batch: its three oldest go, the other five stay.
        expect(await completed()).toEqual([7, 6, 5, 4, 3]);
        for (const job of first.slice(0, 3)) expect(await store.getJob('q', job.id)).toBeUndefined();
        expect(await store.getJob('q', first[3]!.id)).toMatchObject({ state: 'completed', attempt: 1 });
        expect((await store.stats('q')).counts.completed).toBe(5);
        expect(await completed({ offset: 1, limit: 2 })).toEqual([6, 5]);
        const finishedAt = (await store.getJob('q', first[7]!.id))!.finishedAt!;
        expect(await completed({ from: finishedAt, offset: 2 })).toEqual([5, 4, 3]);
        expect(await completed({ from: finishedAt, offset: 1, limit: 2 })).toEqual([6, 5]);

        // One taken out of the middle; the count bound still counts every job kept.
        expect(await store.removeJob('q', first[5]!.id)).toBe(true);
        expect(await store.getJob('q', first[5]!.id)).toBeUndefined();
        expect(await completed()).toEqual([7, 6, 4, 3]);
        expect((await store.stats('q')).counts.completed).toBe(4);
        await completeTogether([8, 9, 10]);
        expect(await completed()).toEqual([10, 9, 8, 7, 6]);
        expect((await store.stats('q')).counts.completed).toBe(5);
        await completeTogether([11]);
        expect(await completed()).toEqual([11, 10, 9, 8, 7]);

        // Purged: none left, and the count bound starts again from nothing.
        await store.purge('q', JobState.Completed);
        expect(await completed()).toEqual([]);
        expect((await store.stats('q')).counts.completed).toBe(0);
        await completeTogether([12, 13]);
        await completeTogether([14, 15]);
        expect(await completed()).toEqual([15, 14, 13, 12]);

        // The age bound drops a batch whole once all of it is old enough.
        await store.updateQueueConfig!('q', { retention: { keep: 'count', count: 100, ageMs: 400 * k } });
        await advance(500);
        await completeTogether([16, 17]);
        expect(await completed()).toEqual([17, 16]);
        expect((await store.stats('q')).counts.completed).toBe(2);
        expect((await store.stats('q')).totals.completed).toBe(18);
      });

      it('keeps the default retention when the queue sets none', async () => {
        expect(DEFAULT_RETENTION).toEqual({ keep: 'count', count: expect.any(Number) as number });
        const keep = DEFAULT_RETENTION.keep === 'count' ? DEFAULT_RETENTION.count : 0;
        const n = keep + 2;
        await add(Array.from({ length: n }, (_, i) => ({ queue: 'q', data: i })));
        const jobs: ReservedJob[] = [];
        while (jobs.length < n) {
          const got = (await reserve('q', n - jobs.length)).jobs;
          expect(got.length).toBeGreaterThan(0);
          jobs.push(...got);
        }
        await settleAll(jobs.map((j) => ({ ...base(j), kind: 'completed', result: null, durationMs: 1 })));
        expect((await store.stats('q')).counts.completed).toBe(keep);
        expect(await store.getJob('q', jobs[0]!.id)).toBeUndefined();
        expect(await store.getJob('q', jobs[1]!.id)).toBeUndefined();
        expect(await store.getJob('q', jobs[n - 1]!.id)).toMatchObject({ state: 'completed' });
      });

      it('keeps dead jobs by count when the queue says so (all of them by default)', async () => {
        const kill = async (n: number): Promise<string[]> => {
          await add(Array.from({ length: n }, (_, i) => ({ queue: 'q', data: i })));
          const { jobs } = await reserve('q', n);
          await settleAll(jobs.map((j) => ({ ...base(j), kind: 'dead', reason: `r${j.id}` })));
          return jobs.map((j) => j.id);
        };
        const kept = await kill(3);
        expect((await store.stats('q')).counts.dead).toBe(3);
        await store.updateQueueConfig!('q', { deadRetention: { keep: 'count', count: 2 } });
        const ids = await kill(2);
        expect((await store.listJobs('q', JobState.Dead)).map((j) => j.id)).toEqual([ids[1], ids[0]]);
        for (const id of kept) expect(await store.getJob('q', id)).toBeUndefined();
        expect((await store.stats('q')).counts.dead).toBe(2);
        expect((await store.stats('q')).totals.dead).toBe(5);
      });

      it('deletes finished and dead jobs past their age during lease recovery, with no settle', async () => {
        // The age scales with the store's time (`timeScale`), as the waits do: on a loaded machine
        // the first recovery below may come well after its wait.
        await store.updateQueueConfig!('q', {
          retention: { keep: 'count', count: 100, ageMs: 400 * k },
          deadRetention: { keep: 'age', ageMs: 400 * k },
        });
        await add([1, 2].map((n) => ({ queue: 'q', data: n })));
        const [a, b] = (await reserve('q', 2)).jobs;
        await settleAll([
          { ...base(a!), kind: 'completed', result: null, durationMs: 1 },
          { ...base(b!), kind: 'dead', reason: 'gone' },
        ]);
        await advance(50);
        await firstValueFrom(store.recoverExpired('q'));
        expect(await store.getJob('q', a!.id)).toMatchObject({ state: 'completed' });
        expect(await store.getJob('q', b!.id)).toMatchObject({ state: 'dead' });
        await advance(500);
        await firstValueFrom(store.recoverExpired('q'));
        expect(await store.getJob('q', a!.id)).toBeUndefined();
        expect(await store.getJob('q', b!.id)).toBeUndefined();
        expect((await store.stats('q')).counts).toMatchObject({ completed: 0, dead: 0 });
      });

      it('deletes dead jobs at once with a dead retention of none', async () => {
        await store.updateQueueConfig!('q', { deadRetention: { keep: 'none' } });
        await add([{ queue: 'q', data: 1 }]);
        const [a] = (await reserve('q', 1)).jobs;
        await settleAll([{ ...base(a!), kind: 'dead', reason: 'gone' }]);
        expect(await store.getJob('q', a!.id)).toBeUndefined();
        expect((await store.stats('q')).counts.dead).toBe(0);
        expect((await store.stats('q')).totals.dead).toBe(1);
      });

      it('patches the configuration field by field; concurrent patches all survive', async () => {
        const schema = { type: 'object' };
        await store.updateQueueConfig!('q', { schema });
        const spec = (cron: string) => ({ cron, data: { cron } });
        const changes = await Promise.all([
          store.updateQueueConfig!('q', { schedules: { a: spec('* * * * *') } }),
          store.updateQueueConfig!('q', { schedules: { b: spec('0 * * * *') } }),
          store.updateQueueConfig!('q', { retention: { keep: 'age', ageMs: 60_000 } }),
          store.updateQueueConfig!('q', { schedules: { c: spec('0 0 * * *') } }),
        ]);
        expect(changes).toHaveLength(4);
        expect(await store.getQueueConfig('q')).toEqual({
          schema,
          retention: { keep: 'age', ageMs: 60_000 },
          schedules: { a: spec('* * * * *'), b: spec('0 * * * *'), c: spec('0 0 * * *') },
        });
        const change = await store.updateQueueConfig!('q', {
          schedules: { a: null, missing: null },
          retention: null,
        });
        expect(change.previous.schedules).toHaveProperty('a');
        expect(change.config).toEqual({
          schema,
          schedules: { b: spec('0 * * * *'), c: spec('0 0 * * *') },
        });
        expect(await store.getQueueConfig('q')).toEqual(change.config);
      });

      it('refuses a bad configuration patch and changes nothing', async () => {
        await store.updateQueueConfig!('q', { retention: { keep: 'count', count: 5 } });
        const before = await store.getQueueConfig('q');
        const bad: unknown[] = [
          { retention: { keep: 'count', count: -1 } },
          { retention: { keep: 'age' } },
          { deadRetention: { keep: 'forever' } },
          { schedules: { nightly: { cron: 'not a cron' } } },
          { colour: 'blue' },
        ];
        for (const patch of bad) {
          await expect(store.updateQueueConfig!('q', patch as never)).rejects.toMatchObject({
            code: 'ERR_SLUICE_INVALID_ARGUMENT',
          });
        }
        await expect(
          store.setQueueConfig('q', { retention: { keep: 'count', count: 1.5 } }),
        ).rejects.toMatchObject({ code: 'ERR_SLUICE_INVALID_ARGUMENT' });
        expect(await store.getQueueConfig('q')).toEqual(before);
      });

      it('says what its counts count: records kept, totals ever, failures by cause', async () => {
        await store.updateQueueConfig!('q', { retention: { keep: 'count', count: 3 } });
        await add([1, 2, 3, 4, 5, 6].map((n) => ({ queue: 'q', data: n, maxAttempts: 1 })));
        const [a, b, c, d] = (await reserve('q', 4)).jobs;
        await settleAll([
          { ...base(a!), kind: 'completed', result: null, durationMs: 1 },
          { ...base(b!), kind: 'completed', result: null, durationMs: 1 },
          { ...base(c!), kind: 'dead', reason: 'bad', error: { name: 'E', message: 'boom' } },
          { ...base(d!), kind: 'cancelled', reason: 'asked' },
        ]);
        expect(await store.cancel('q', (await store.listJobs('q', JobState.Ready))[0]!.id)).toBe('cancelled');
        await reserve('q', 1, { leaseMs: 50 });
        await advance(100);
        expect((await firstValueFrom(store.recoverExpired('q'))).dead).toHaveLength(1);
        const stats = await store.stats('q');
        // Completed and cancelled jobs share the retention of 3: the oldest completed one went.
        expect(stats.counts).toMatchObject({ completed: 1, cancelled: 2, dead: 2, ready: 0, running: 0 });
        expect(stats.retained).toEqual({ completed: 1, cancelled: 2, dead: 2 });
        expect(stats.totals).toEqual({
          enqueued: 6,
          completed: 2,
          failed: 2,
          handlerFailures: 1,
          leaseExpiries: 1,
          dead: 2,
          cancelled: 2,
        });
      });

      it('counts completions and failures per minute', async () => {
        await add([1, 2, 3].map((n) => ({ queue: 'q', data: n })));
        const [a, b, c] = (await reserve('q', 3)).jobs;
        await settleAll([
          { ...base(a!), kind: 'completed', result: null, durationMs: 1 },
          { ...base(b!), kind: 'completed', result: null, durationMs: 1 },
          { ...base(c!), kind: 'retrying', delayMs: 1000, error: { name: 'E', message: 'x' } },
        ]);
        const history = await store.history('q', 5);
        expect(history).toHaveLength(5);
        // The settle and this read may fall on either side of the end of a minute (a loaded machine
        // widens the gap): the counts are in the minute of the settle, the last or the one before.
        const [before, last] = [history[3]!, history[4]!];
        expect(before.completed + last.completed).toBe(2);
        expect(before.failed + last.failed).toBe(1);
        expect(last.completed === 2 || before.completed === 2).toBe(true);
        expect(history[0]!.minute).toBeLessThan(history[4]!.minute);
        expect(history.map((h) => h.minute - history[0]!.minute)).toEqual(
          [0, 1, 2, 3, 4].map((i) => i * 60_000),
        );
      });

      it('publishes the stored configuration now and when it changes', async () => {
        const seen = firstValueFrom(store.queueConfig('q').pipe(take(2), toArray(), timeout(5000)));
        await sleep(20);
        const schema = { type: 'object', required: ['to'] };
        await store.setQueueConfig('q', { schema });
        const [first, second] = await seen;
        expect(first).toEqual({});
        expect(second).toEqual({ schema });
      });

      it('lists queues and keeps their configuration', async () => {
        await add([
          { queue: 'beta', data: 1 },
          { queue: 'alpha', data: 1 },
        ]);
        expect(await store.queues()).toEqual(expect.arrayContaining(['alpha', 'beta']));
        const schema = { type: 'object', required: ['to'] };
        await store.setQueueConfig('alpha', { schema });
        expect((await store.getQueueConfig('alpha')).schema).toEqual(schema);
        expect(await store.getQueueConfig('beta')).toEqual({});
      });

      it('reserves thousands of jobs across priorities without losing any', async () => {
        const n = 3000;
        await add(Array.from({ length: n }, (_, i) => ({ queue: 'q', data: i, priority: i % 3 })));
        const seen = new Set<string>();
        let lastPriority = -1;
        for (;;) {
          const { jobs } = await reserve('q', 700);
          if (jobs.length === 0) break;
          for (const j of jobs) {
            expect(j.priority).toBeGreaterThanOrEqual(lastPriority);
            lastPriority = j.priority;
            seen.add(j.id);
          }
        }
        expect(seen.size).toBe(n);
      });
    });
  });
}
