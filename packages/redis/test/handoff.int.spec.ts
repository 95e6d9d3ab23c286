import { delay, firstValueFrom, tap, type Observable } from 'rxjs';
import {
  definePipeline,
  silentLogger,
  Worker,
  type PipelineDefinition,
  type ReserveOptions,
  type ReserveResult,
  type Store,
} from '@sluice/core';
import { JobState } from '@sluice/core';
import type { RedisStore } from '@sluice/redis';
import { enqueueArgs } from '../src/redis-store';
import { queueKeyResolver, scriptKeys, scripts } from '../src/scripts';
import { sleep, storeFixture, useRedisWithAdmin } from './helpers';

/**
 * The store, counting the answers of its reserve calls: a job that starts with no answer since its
 * add came by handoff (the answer of a reserve needs a turn of the event loop; a handoff's start
 * does not wait for one).
 */
function counting(store: RedisStore): { store: Store; answers: () => number } {
  let answers = 0;
  const wrapped = Object.create(store) as Store;
  Object.defineProperty(wrapped, 'reserve', {
    value: <T>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> =>
      store.reserve<T>(queue, n, options).pipe(
        tap(() => {
          answers++;
        }),
      ),
  });
  return { store: wrapped, answers: () => answers };
}

/** A worker of one pipeline, logging nothing. */
const workerOf = (store: Store, pipeline: PipelineDefinition<number>): Worker =>
  new Worker({ store, logger: silentLogger, pipelines: [pipeline] });

const until = async (check: () => boolean, what: string): Promise<void> => {
  for (let i = 0; i < 1000 && !check(); i++) await sleep(10);
  if (!check()) throw new Error(`timed out waiting for ${what}`);
};

describe('Worker on Redis: an add hands its jobs to an idle pipeline', () => {
  const redis = useRedisWithAdmin();
  let fx: Awaited<ReturnType<typeof storeFixture>>;
  beforeEach(async () => {
    fx = await storeFixture(redis.admin, { url: redis.url }, 'handoff');
  });
  afterEach(async () => {
    await fx.cleanup!();
  });
  /** The hash of the queue's parks (`lua/includes/parks.lua`). */
  const parksKey = (): string => `${fx.store.keys.queue('q').active}:p`;

  it('starts a job added to an empty queue with no reserve answered in between, and parks again after', async () => {
    const { store, answers } = counting(fx.store);
    const started: { data: number; answersBefore: number; attempt: number }[] = [];
    const worker = workerOf(
      store,
      definePipeline<number>({
        queue: 'q',
        concurrency: 2,
        // No poll in the test's time: only a handoff (or a wake-up) can start a job.
        idle: { minMs: 20_000, maxMs: 20_000 },
        handler: (job) => {
          started.push({ data: job.data, answersBefore: answers(), attempt: job.attempt });
        },
      }),
    );
    const parks = parksKey();
    // Until the park in Redis holds at least `jobs`.
    const parked = async (jobs: number): Promise<void> => {
      for (let i = 0; i < 500; i++) {
        const value = Object.values(await redis.admin.hgetall(parks))[0];
        if (Number(value?.split('|')[1] ?? 0) >= jobs) {
          await sleep(50); // and the reserve that made it has had its answer
          return;
        }
        await sleep(10);
      }
      throw new Error(`no park of ${jobs}`);
    };
    // Handed-over jobs are reported as leased, as a reserve's are.
    const leased: { requested: number; reserved: number; durationMs: number }[] = [];
    const events = worker.events$.subscribe((e) => {
      if (e.type === 'reserve' && e.reserved > 0)
        leased.push({ requested: e.requested, reserved: e.reserved, durationMs: e.durationMs });
    });
    worker.start();
    try {
      // Two jobs at once: both go to the park (all of the concurrency).
      await parked(2);
      let before = answers();
      await firstValueFrom(fx.store.enqueue([1, 2].map((n) => ({ queue: 'q', data: n }))));
      await until(() => started.length === 2, 'jobs 1 and 2');
      expect(started).toEqual([
        { data: 1, answersBefore: before, attempt: 1 },
        { data: 2, answersBefore: before, attempt: 1 },
      ]);
      // Then one at a time: the pipeline parks again after each.
      for (const n of [3, 4, 5]) {
        await parked(1);
        before = answers();
        await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: n }]));
        await until(() => started.length === n, `job ${n}`);
        expect(started[n - 1]).toEqual({ data: n, answersBefore: before, attempt: 1 });
      }
      await parked(1);
      expect(leased).toHaveLength(4);
      expect(leased[0]).toEqual({ requested: 2, reserved: 2, durationMs: 0 });
      expect(leased.slice(1).map((l) => l.reserved)).toEqual([1, 1, 1]);
    } finally {
      events.unsubscribe();
      await worker.close({ timeoutMs: 5_000 });
    }
    // A closed worker leaves no park behind: the next add waits in the ready list.
    expect(await redis.admin.hlen(parks)).toBe(0);
    await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 6 }]));
    const stats = await fx.store.stats('q');
    expect(stats.counts).toMatchObject({ ready: 1, running: 0 });
    expect(stats.totals).toMatchObject({ completed: 5 });
  });

  it('dead-letters a malformed record it is handed, with the reason, and runs the next job', async () => {
    const started: number[] = [];
    // Jobs a reserve dead-lettered: none may be, the record must come by handoff.
    let rejectedAtReserve = 0;
    const store = Object.create(fx.store) as Store;
    Object.defineProperty(store, 'reserve', {
      value: <T>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> =>
        fx.store.reserve<T>(queue, n, options).pipe(
          tap((r) => {
            rejectedAtReserve += r.rejected.length;
          }),
        ),
    });
    const worker = workerOf(
      store,
      definePipeline<number>({
        queue: 'q',
        idle: { minMs: 20_000, maxMs: 20_000 },
        handler: (job) => {
          started.push(job.data);
        },
      }),
    );
    worker.start();
    const parks = parksKey();
    const keys = fx.store.keys.queue('q');
    // An add by a client that stored data that is not JSON: the enqueue script called directly.
    const enqueue = scripts().enqueue;
    const addRaw = (data: string): Promise<unknown> =>
      redis.admin.eval(
        enqueue.source,
        enqueue.numberOfKeys,
        ...scriptKeys(enqueue, queueKeyResolver(keys)),
        ...enqueueArgs(keys, 1),
        '0',
        data,
      );
    try {
      for (let i = 0; i < 200 && (await redis.admin.hlen(parks)) === 0; i++) await sleep(10);
      expect(await redis.admin.hlen(parks)).toBe(1);
      const [, id] = (await addRaw('{"to": oops')) as [number, string, number];
      // Handed over (nothing made it ready), then dead-lettered by the worker that read it.
      for (let i = 0; i < 500 && (await fx.store.stats('q')).counts.dead === 0; i++) await sleep(10);
      const dead = await fx.store.getJob('q', id);
      expect(dead).toMatchObject({ state: JobState.Dead, data: '{"to": oops' });
      expect(dead?.reason).toMatch(/not JSON/);
      // The pipeline parks again and runs the next job it is handed.
      for (let i = 0; i < 200 && (await redis.admin.hlen(parks)) === 0; i++) await sleep(10);
      await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 7 }]));
      await until(() => started.length === 1, 'the next job');
      expect(started).toEqual([7]);
      expect((await fx.store.stats('q')).counts).toMatchObject({ ready: 0, dead: 1 });
      expect(rejectedAtReserve).toBe(0);
    } finally {
      await worker.close({ timeoutMs: 5_000 });
    }
  });

  it('takes its park back while paused, and runs what came meanwhile once resumed', async () => {
    const started: number[] = [];
    const worker = workerOf(
      fx.store,
      definePipeline<number>({
        queue: 'q',
        concurrency: 3,
        handler: (job) => {
          started.push(job.data);
        },
      }),
    );
    worker.start();
    const parks = parksKey();
    try {
      for (let i = 0; i < 200 && (await redis.admin.hlen(parks)) === 0; i++) await sleep(10);
      expect(await redis.admin.hlen(parks)).toBe(1);
      worker.pause();
      for (let i = 0; i < 200 && (await redis.admin.hlen(parks)) === 1; i++) await sleep(10);
      expect(await redis.admin.hlen(parks)).toBe(0);
      await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 1 }]));
      await sleep(100);
      expect(started).toEqual([]);
      expect((await fx.store.stats('q')).counts).toMatchObject({ ready: 1, running: 0 });
      worker.resume();
      await until(() => started.length === 1, 'the job after resume');
    } finally {
      await worker.close({ timeoutMs: 5_000 });
    }
  });

  it('takes back a park made by a reserve that was in flight when the worker paused', async () => {
    // Reserve answers arrive 300 ms late, so the pause lands while one is in flight.
    const slow = Object.create(fx.store) as Store;
    Object.defineProperty(slow, 'reserve', {
      value: <T>(queue: string, n: number, options: ReserveOptions): Observable<ReserveResult<T>> =>
        fx.store.reserve<T>(queue, n, options).pipe(delay(300)),
    });
    const started: number[] = [];
    const worker = workerOf(
      slow,
      definePipeline<number>({
        queue: 'q',
        concurrency: 1,
        idle: { minMs: 20_000, maxMs: 20_000 },
        handler: (job) => {
          started.push(job.data);
        },
      }),
    );
    const parks = parksKey();
    worker.start();
    try {
      for (let i = 0; i < 500 && (await redis.admin.hlen(parks)) === 0; i++) await sleep(10);
      await sleep(400); // its answer is in
      // The park is used up: the source parks again, by a reserve answered 300 ms later.
      await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 1 }]));
      await until(() => started.length === 1, 'job 1');
      await sleep(100);
      worker.pause();
      await sleep(600);
      expect(await redis.admin.hlen(parks)).toBe(0);
      await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 2 }]));
      await sleep(100);
      expect(started).toEqual([1]);
      expect((await fx.store.stats('q')).counts).toMatchObject({ ready: 1, running: 0 });
      worker.resume();
      await until(() => started.length === 2, 'job 2 after resume');
    } finally {
      await worker.close({ timeoutMs: 5_000 });
    }
  });

  it('never runs more handlers at once than its concurrency while adds are handed over', async () => {
    let running = 0;
    let most = 0;
    let done = 0;
    const worker = workerOf(
      fx.store,
      definePipeline<number>({
        queue: 'q',
        concurrency: 3,
        handler: async () => {
          running++;
          most = Math.max(most, running);
          await sleep(Math.random() * 8);
          running--;
          done++;
        },
      }),
    );
    worker.start();
    let leasedMost = 0;
    const total = 150;
    const added = Array.from({ length: total }, (_, i) => 1 + (i % 4)).reduce((a, b) => a + b, 0);
    try {
      await sleep(200);
      for (let i = 0; i < total; i++) {
        const burst = 1 + (i % 4);
        await firstValueFrom(
          fx.store.enqueue(Array.from({ length: burst }, () => ({ queue: 'q', data: i }))),
        );
        if (i % 10 === 0) leasedMost = Math.max(leasedMost, (await fx.store.stats('q')).counts.running);
        await sleep(Math.random() * 4);
      }
      await until(() => done === added, 'every job');
    } finally {
      await worker.close({ timeoutMs: 5_000 });
    }
    expect(most).toBeLessThanOrEqual(3);
    // Leased at once (sampled): no more than the concurrency (no prefetch by default), however the
    // jobs came (handed over or reserved).
    expect(leasedMost).toBeLessThanOrEqual(3);
    expect((await fx.store.stats('q')).totals).toMatchObject({ completed: added });
  });
});
