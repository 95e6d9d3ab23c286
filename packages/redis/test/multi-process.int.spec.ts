import type { Redis } from 'ioredis';
import { firstValueFrom } from 'rxjs';
import { uniquePrefix } from '@sluice/testing';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { sleep, useRedisWithAdmin } from './helpers';
import { maxInAnyWindow } from '@sluice/core';
import { killAllWorkers, WorkerProcess } from './worker-process';

/** Redis TIME in ms, the clock leases and the rate limit use. */
async function redisNow(client: Redis): Promise<number> {
  const [s, us] = await client.time();
  return Number(s) * 1000 + Math.floor(Number(us) / 1000);
}

/**
 * Real worker processes (compiled packages, forked node) sharing one Redis: the guarantees that
 * only hold across processes — the shared rate limit on the store's clock, recovery of a killed
 * worker's jobs, pause reaching every process.
 */
describe('worker processes sharing one Redis', () => {
  const redis = useRedisWithAdmin();
  let prefix: string;
  let store: RedisStore;

  beforeEach(async () => {
    prefix = uniquePrefix('procs');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    await killAllWorkers();
    await store.close();
    await deleteKeysWithPrefix(redis.admin, prefix);
  });

  it('holds a 400 per second limit across four workers, two of them with skewed clocks, running every job once', async () => {
    const jobs = 2400;
    const common = {
      url: redis.url,
      prefix,
      queue: 'limited',
      concurrency: 50,
      workMs: 5,
      rateLimit: { allowed: 400, periodMs: 1000 },
    };
    const offsets = [0, 0, 7_000, -5_000];
    const workers = await Promise.all(
      offsets.map((clockOffsetMs, i) => WorkerProcess.start(`w${i}`, { ...common, clockOffsetMs })),
    );
    await firstValueFrom(
      store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue: 'limited', data: { n } }))),
    );
    const completed = (): number => workers.reduce((sum, w) => sum + w.outcomes.length, 0);
    // 6 s at the full rate; a slow or busy machine starts many of them late, and late starts wait
    // for room in the window (see the README's rate-limit section), so allow many times that.
    await workers[0]!.until(() => completed() >= jobs, 100_000, `${jobs} outcomes`);

    const outcomes = workers.flatMap((w) => w.outcomes);
    expect(outcomes.every((o) => o.kind === 'completed')).toBe(true);
    expect(new Set(outcomes.map((o) => o.id)).size).toBe(jobs);
    expect(outcomes).toHaveLength(jobs);
    const starts = workers.flatMap((w) => w.starts);
    expect(new Set(starts.map((s) => s.id)).size).toBe(jobs);
    expect(starts).toHaveLength(jobs);

    const worst = maxInAnyWindow(
      starts.map((s) => s.startedAt),
      1000,
    );
    const span = Math.max(...starts.map((s) => s.startedAt)) - Math.min(...starts.map((s) => s.startedAt));
    console.log(
      `rate limit: ${jobs} jobs over ${span} ms, at most ${worst} starts in any 1000 ms window; per worker: ${workers
        .map((w) => `${w.name}=${w.starts.length}`)
        .join(' ')}`,
    );
    expect(worst).toBeLessThanOrEqual(400);
    expect(span).toBeGreaterThanOrEqual(5000); // 2400 at 400/s cannot start faster
    // The same count on the times handlers really started (each worker's clock taken back to true),
    // reported but not asserted: holding it depends on starts landing within the 5 ms margin, i.e.
    // on how loaded the machine is, and this suite shares two cores with every other test. The
    // benchmark measures it (bench/RESULTS.md); the start gate's rules are pinned in virtual time in
    // process-jobs.spec.ts.
    const handlerStarts = workers.flatMap((w, i) => w.starts.map((s) => s.at - offsets[i]!));
    console.log(
      `rate limit by handler start: at most ${maxInAnyWindow(handlerStarts, 1000)} in any 1000 ms window`,
    );
    // The skewed workers took part, and their clocks really were off: each worker's mean gap between
    // its clock at a start and the store time of the grant, against the unskewed worker's (the
    // common part, the time from grant to start, grows on a busy machine and cancels out).
    const meanSkew = (w: WorkerProcess): number =>
      w.starts.reduce((sum, s) => sum + (s.at - s.startedAt), 0) / w.starts.length;
    for (const [i, offset] of offsets.entries()) {
      const w = workers[i]!;
      expect(w.starts.length).toBeGreaterThan(0);
      expect(Math.abs(meanSkew(w) - meanSkew(workers[0]!) - offset)).toBeLessThan(1000);
    }
    expect((await store.stats('limited')).totals).toMatchObject({
      enqueued: jobs,
      completed: jobs,
      failed: 0,
    });
    await Promise.all(workers.map((w) => w.close()));
  }, 150_000);

  it('recovers the jobs of a worker killed mid-batch: every job completes, duplicates stay within what was in flight', async () => {
    const jobs = 400;
    const common = { url: redis.url, prefix, queue: 'crashy', concurrency: 10, leaseMs: 1000, workMs: 100 };
    const victim = await WorkerProcess.start('victim', common);
    const survivor = await WorkerProcess.start('survivor', common);
    await firstValueFrom(
      store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue: 'crashy', data: { n } }))),
    );
    await victim.until(
      () => victim.outcomes.length >= 20 && victim.starts.length >= 40,
      15_000,
      'some progress',
    );
    await victim.kill();

    const victimStarted = new Set(victim.starts.map((s) => s.id));
    const victimSettled = new Set(victim.outcomes.map((o) => o.id));
    const inFlightAtKill = [...victimStarted].filter((id) => !victimSettled.has(id));

    const done = async (): Promise<boolean> => {
      const stats = await store.stats('crashy');
      return stats.totals.completed === jobs && stats.counts.running === 0 && stats.counts.ready === 0;
    };
    const deadline = Date.now() + 20_000;
    while (!(await done())) {
      if (Date.now() > deadline)
        throw new Error(`not all jobs completed: ${JSON.stringify(await store.stats('crashy'))}`);
      await sleep(100);
    }

    const stats = await store.stats('crashy');
    expect(stats.counts).toMatchObject({ completed: jobs, dead: 0, scheduled: 0, running: 0, ready: 0 });
    const finished = new Set([...victim.outcomes, ...survivor.outcomes].map((o) => o.id));
    expect(finished.size).toBe(jobs);
    // Every job the victim held when it died was run again by the survivor, on a later attempt.
    const rerun = survivor.starts.filter((s) => victimStarted.has(s.id));
    const duplicates = new Set(rerun.map((s) => s.id)).size;
    for (const id of inFlightAtKill) expect(survivor.outcomes.some((o) => o.id === id)).toBe(true);
    expect(rerun.every((s) => s.attempt >= 2)).toBe(true);
    console.log(
      `kill: ${inFlightAtKill.length} jobs in flight at SIGKILL, ${duplicates} executed twice, ` +
        `${stats.totals.failed} attempts counted as failed (lease expired)`,
    );
    expect(duplicates).toBeLessThanOrEqual(inFlightAtKill.length);
    // One failed attempt (lease expired) per job the victim held, at most its in-flight budget.
    expect(stats.totals.failed).toBeGreaterThanOrEqual(duplicates);
    expect(stats.totals.failed).toBeLessThanOrEqual(common.concurrency);
    await survivor.close();
  }, 60_000);

  it('pause stops every worker process from starting jobs within a second; resume restarts them', async () => {
    const common = { url: redis.url, prefix, queue: 'pausable', concurrency: 4, leaseMs: 5000, workMs: 50 };
    const workers = await Promise.all([0, 1].map((i) => WorkerProcess.start(`p${i}`, common)));
    await firstValueFrom(
      store.enqueue(Array.from({ length: 3000 }, (_, n) => ({ queue: 'pausable', data: { n } }))),
    );
    await Promise.all(workers.map((w) => w.until(() => w.starts.length >= 10, 10_000, 'ten starts')));

    await store.pause('pausable');
    const pausedAt = Date.now();
    const pausedAtRedis = await redisNow(redis.admin);
    await sleep(2000);
    const afterPause = workers.flatMap((w) => w.starts.filter((s) => s.at > pausedAt));
    const lastStart = Math.max(...workers.flatMap((w) => w.starts.map((s) => s.at)));
    console.log(`pause: last handler start ${lastStart - pausedAt} ms after pause() resolved`);
    expect(afterPause.filter((s) => s.at > pausedAt + 1000)).toEqual([]);
    // The reserve script checks the flag atomically: no lease granted after the pause.
    expect(workers.flatMap((w) => w.starts).filter((s) => s.startedAt > pausedAtRedis)).toEqual([]);
    const idle = await store.stats('pausable');
    expect(idle).toMatchObject({ paused: true, counts: { running: 0 } });

    const before = workers.map((w) => w.starts.length);
    await store.resume('pausable');
    const resumedAt = Date.now();
    await Promise.all(
      workers.map((w, i) => w.until(() => w.starts.length > before[i]!, 3000, 'a start after resume')),
    );
    const firstAfter = Math.min(
      ...workers.flatMap((w) => w.starts.filter((s) => s.received >= resumedAt).map((s) => s.received)),
    );
    console.log(`resume: first start ${firstAfter - resumedAt} ms after resume() resolved`);
    await Promise.all(workers.map((w) => w.close()));
  }, 60_000);
});
