import { firstValueFrom, filter, take, timeout } from 'rxjs';
import { definePipeline, maxInAnyWindow, Queue, silentLogger, Worker, type Outcome } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { clientCount, sleep, storeFixture, useRedisClusterWithAdmin } from './helpers';

jest.setTimeout(60_000);

/**
 * Whole workers on a 3-master Redis Cluster: two worker "processes" (each its own store and
 * connections) run pipelines on queues of every master, with rate limits, recurring schedules, pause,
 * cancellation and a graceful drain.
 */
/**
 * The starts of the first window of `periodMs` holding more than `allowed`, each with how long
 * after its slot it started (ms), and the slots' own busiest window.
 */
function overLimit(
  queue: string,
  starts: readonly number[],
  slots: readonly number[],
  limit: { allowed: number; periodMs: number },
): string {
  const order = starts.map((_, i) => i).sort((a, b) => starts[a]! - starts[b]!);
  for (let i = 0; i < order.length; i++) {
    const from = starts[order[i]!]!;
    const inside = order.filter((j) => starts[j]! >= from && starts[j]! < from + limit.periodMs);
    if (inside.length <= limit.allowed) continue;
    const late = inside.map((j) => (starts[j]! - slots[j]!).toFixed(1));
    return (
      `${queue}: ${inside.length} starts in [${from.toFixed(1)}, +${limit.periodMs}), each this many ms ` +
      `after its slot: ${late.join(' ')}; the slots' busiest window holds ` +
      `${maxInAnyWindow(slots, limit.periodMs)}`
    );
  }
  return `${queue}: no window over the limit`;
}

describe('workers on a 3-master Redis Cluster', () => {
  const cluster = useRedisClusterWithAdmin();
  const connection = () => ({ cluster: { nodes: cluster.startupNodes } });
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
  });

  /** A store of its own on the test's prefix (another process would have one). */
  async function peer(prefix: string): Promise<RedisStore> {
    const store = await RedisStore.connect({ connection: connection(), prefix });
    cleanups.push(() => store.close());
    return store;
  }

  async function fixture() {
    const fx = await storeFixture(cluster.admin, { connection: connection() }, 'cluster-worker');
    cleanups.push(() => fx.cleanup!());
    return fx;
  }

  it('two workers run queues of every master, each job once, within each queue’s rate limit by handler start', async () => {
    const fx = await fixture();
    const queues = ['mail', 'sms', 'push', 'hooks', 'exports', 'thumbs'];
    const owners = new Set<string>();
    for (const q of queues) {
      const slot = await cluster.admin.cluster('KEYSLOT', fx.store.keys.queue(q).settings);
      owners.add(cluster.admin.slots[slot]![0]!);
    }
    expect(owners.size).toBe(3);
    const perQueue = 60;
    const limit = { allowed: 25, periodMs: 1000 };
    const starts = new Map<string, number[]>(queues.map((q) => [q, []]));
    // Each start's slot (the store's clock, the same machine's as the handler's): what an over-limit
    // window is made of is printed before the check fails.
    const slots = new Map<string, number[]>(queues.map((q) => [q, []]));
    const ran: string[] = [];
    const outcomes: Outcome[] = [];
    const other = await peer(fx.prefix);
    const workers = [fx.store, other].map((store) => {
      const worker = new Worker({
        store,
        logger: silentLogger,
        pipelines: queues.map((queue) =>
          definePipeline<{ n: number }>({
            queue,
            concurrency: 5,
            rateLimit: limit,
            handler: async (job, ctx) => {
              starts.get(queue)!.push(performance.timeOrigin + performance.now());
              slots.get(queue)!.push(ctx.limit?.slot ?? Number.NaN);
              ran.push(`${queue}/${job.id}`);
              await sleep(2);
              return job.data.n;
            },
          }),
        ),
      });
      worker.outcomes$.subscribe((o) => outcomes.push(o));
      cleanups.push(() => worker.close({ timeoutMs: 5000 }));
      return worker;
    });
    for (const w of workers) w.start();
    await firstValueFrom(
      fx.store.enqueue(
        queues.flatMap((queue) => Array.from({ length: perQueue }, (_, n) => ({ queue, data: { n } }))),
      ),
    );
    const total = queues.length * perQueue;
    const deadline = Date.now() + 30_000;
    while (outcomes.filter((o) => o.kind === 'completed').length < total && Date.now() < deadline) {
      await sleep(50);
    }
    await Promise.all(workers.map((w) => w.close({ timeoutMs: 5000 })));
    expect(outcomes.filter((o) => o.kind === 'completed')).toHaveLength(total);
    expect(outcomes.filter((o) => o.kind !== 'completed' && o.kind !== 'snoozed')).toEqual([]);
    expect(new Set(ran).size).toBe(total); // no job ran twice
    for (const q of queues) {
      const times = starts.get(q)!;
      expect(times).toHaveLength(perQueue);
      const worst = maxInAnyWindow(times, limit.periodMs);
      if (worst > limit.allowed) console.log(overLimit(q, times, slots.get(q)!, limit));
      expect(worst).toBeLessThanOrEqual(limit.allowed);
      const stats = await fx.store.stats(q);
      expect([q, stats.counts.completed]).toEqual([q, perQueue]);
    }
  });

  it('a worker process running twelve queues on three masters holds at most two connections per master and one more', async () => {
    const masters = cluster.admin.nodes('master');
    const clients = (): Promise<number> => clientCount(masters);
    const before = await clients();
    const fx = await fixture();
    const queues = Array.from({ length: 12 }, (_, i) => `w-${i}`);
    const done: string[] = [];
    const worker = new Worker({
      store: fx.store,
      logger: silentLogger,
      pipelines: queues.map((queue) =>
        definePipeline({
          queue,
          concurrency: 4,
          rateLimit: { allowed: 100, periodMs: 1000 },
          handler: (job) => {
            done.push(job.id);
            return Promise.resolve(null);
          },
        }),
      ),
    });
    cleanups.push(() => worker.close({ timeoutMs: 5000 }));
    worker.start();
    await firstValueFrom(
      fx.store.enqueue(queues.flatMap((queue) => Array.from({ length: 10 }, (_, n) => ({ queue, data: n })))),
    );
    for (const deadline = Date.now() + 20_000; done.length < 120 && Date.now() < deadline;) await sleep(50);
    expect(done).toHaveLength(120);
    const held = (await clients()) - before;
    console.log(`one worker process, 12 queues on 3 masters: ${held} connections`);
    // Calls and sharded pub/sub: one connection per master each, one reading the slot map.
    expect(held).toBeLessThanOrEqual(2 * masters.length + 1);
  });

  it('a recurring schedule adds one job per tick however many workers add it', async () => {
    const fx = await fixture();
    const ticks: number[] = [];
    const workers = [fx.store, await peer(fx.prefix)].map((store) => {
      const worker = new Worker({
        store,
        logger: silentLogger,
        scheduleEveryMs: 200,
        pipelines: [
          definePipeline({
            queue: 'cron',
            handler: (job) => {
              ticks.push(job.runAt);
              return Promise.resolve(null);
            },
          }),
        ],
      });
      cleanups.push(() => worker.close({ timeoutMs: 5000 }));
      return worker;
    });
    await new Queue(fx.store, 'cron').schedule('every-second', '* * * * * *', { hello: 1 });
    for (const w of workers) w.start();
    await sleep(3_500);
    await Promise.all(workers.map((w) => w.close({ timeoutMs: 5000 })));
    expect(ticks.length).toBeGreaterThanOrEqual(2);
    expect(new Set(ticks).size).toBe(ticks.length); // each tick once
    for (const t of ticks) expect(t % 1000).toBe(0);
  });

  it('pause and resume from another process, cancellation of a running job, and a graceful drain', async () => {
    const fx = await fixture();
    const admin = await peer(fx.prefix);
    const started: string[] = [];
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const worker = new Worker({
      store: fx.store,
      logger: silentLogger,
      pipelines: [
        definePipeline<{ kind: string }>({
          queue: 'ops',
          concurrency: 4,
          handler: async (job, ctx) => {
            started.push(job.data.kind);
            if (job.data.kind === 'long') {
              await new Promise<void>((resolve) => {
                ctx.signal.addEventListener('abort', () => {
                  resolve();
                });
              });
              return 'stopped';
            }
            if (job.data.kind === 'slow') await gate;
            return 'ok';
          },
        }),
      ],
    });
    const outcomes: Outcome[] = [];
    worker.outcomes$.subscribe((o) => outcomes.push(o));
    cleanups.push(() => worker.close({ timeoutMs: 5000 }));
    worker.start();

    // Cancellation: a running job, cancelled from the other process, is aborted in its handler.
    const [added] = await firstValueFrom(fx.store.enqueue([{ queue: 'ops', data: { kind: 'long' } }]));
    const longId = added!.id;
    while (!started.includes('long')) await sleep(10);
    const cancelled = firstValueFrom(
      worker.outcomes$.pipe(
        filter((o) => o.job.id === longId),
        take(1),
        timeout(10_000),
      ),
    );
    expect(await admin.cancel('ops', longId)).toBe('signalled');
    expect(await cancelled).toMatchObject({ kind: 'cancelled' });

    // Pause from the other process: nothing starts until it resumes.
    await admin.pause('ops');
    await sleep(300); // the settings change travels over pub/sub
    const before = started.length;
    await firstValueFrom(
      fx.store.enqueue(Array.from({ length: 5 }, () => ({ queue: 'ops', data: { kind: 'quick' } }))),
    );
    await sleep(1_000);
    expect(started.length).toBe(before);
    await admin.resume('ops');
    const deadline = Date.now() + 10_000;
    while (started.length < before + 5 && Date.now() < deadline) await sleep(20);
    expect(started.length).toBe(before + 5);

    // A graceful drain: two slow handlers running and three jobs waiting when the worker closes;
    // the running ones finish, the waiting ones stay in the queue for the next worker.
    await firstValueFrom(
      fx.store.enqueue([
        ...Array.from({ length: 2 }, () => ({ queue: 'ops', data: { kind: 'slow' } })),
        ...Array.from({ length: 3 }, () => ({
          queue: 'ops',
          data: { kind: 'late' },
          runAt: Date.now() + 60_000,
        })),
      ]),
    );
    while (started.filter((k) => k === 'slow').length < 2) await sleep(10);
    const closing = worker.close({ timeoutMs: 10_000 });
    await sleep(200);
    release();
    await closing;
    expect(outcomes.filter((o) => o.kind === 'completed' && o.result === 'ok')).toHaveLength(7);
    const stats = await fx.store.stats('ops');
    expect(stats.counts.running).toBe(0);
    expect(stats.counts.scheduled).toBe(3);
    expect(stats.counts.completed).toBe(7);
    expect(stats.counts.dead).toBe(0);
  });
});
