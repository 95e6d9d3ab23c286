import { firstValueFrom } from 'rxjs';
import { maxInAnyWindow } from '@sluice/core';
import { storeFixture, useRedisClusterWithAdmin } from './helpers';
import {
  killAllWorkers,
  ProviderProcess,
  runUntilCompleted,
  shareOfLimit,
  startsOnceEach,
  WorkerProcess,
} from './worker-process';

/**
 * The four-process rate-limit test on a 3-master Redis Cluster: the limit's log lives in the queue's
 * slot, and four worker processes (two with clocks off by seconds) share it through the Cluster.
 */
describe('worker processes sharing a rate limit on a 3-master Redis Cluster', () => {
  const cluster = useRedisClusterWithAdmin();
  afterEach(async () => {
    await killAllWorkers();
  });

  it('holds 400 per second by handler start across four workers, two with skewed clocks', async () => {
    const fx = await storeFixture(
      cluster.admin,
      { connection: { cluster: { nodes: cluster.startupNodes } } },
      'cluster-limit',
    );
    const provider = await ProviderProcess.start();
    const jobs = 2400;
    const offsets = [0, 0, 7_000, -5_000];
    try {
      const common = {
        url: '',
        cluster: cluster.startupNodes,
        prefix: fx.prefix,
        queue: 'limited',
        concurrency: 50,
        workMs: 5,
        rateLimit: { allowed: 400, periodMs: 1000 },
        providerUrl: provider.url,
      };
      const workers = await Promise.all(
        offsets.map((clockOffsetMs, i) => WorkerProcess.start(`w${i}`, { ...common, clockOffsetMs })),
      );
      if (process.env.CI) expect(workers[2]!.skewedBy).toBe('libfaketime');
      await firstValueFrom(
        fx.store.enqueue(Array.from({ length: jobs }, (_, n) => ({ queue: 'limited', data: { n } }))),
      );
      await runUntilCompleted(workers, jobs);

      // Handler starts, each worker's clock taken back to true.
      const { starts, handedBack } = startsOnceEach(workers, jobs, offsets);
      const worst = maxInAnyWindow(starts, 1000);
      const share = shareOfLimit(starts, 400, 1000);
      const arrivals = (await provider.arrivals()).map((a) => a.at);
      console.log(
        `rate limit on a 3-master Cluster: ${jobs} jobs, at most ${worst} handler starts in any 1000 ms ` +
          `(${(share * 100).toFixed(1)}% of 400/s), provider at most ${maxInAnyWindow(arrivals, 1000)} in any window; ` +
          `per worker: ${workers.map((w) => `${w.name}=${w.starts.length}`).join(' ')}; handed back ${handedBack}`,
      );
      expect(worst).toBeLessThanOrEqual(400);
      expect(Math.max(...starts) - Math.min(...starts)).toBeGreaterThanOrEqual(5000); // 2400 at 400/s
      for (const w of workers) expect(w.starts.length).toBeGreaterThan(0);
      expect((await fx.store.stats('limited')).totals).toMatchObject({
        enqueued: jobs,
        completed: jobs,
        failed: 0,
      });
    } finally {
      provider.stop();
      await fx.cleanup!();
    }
  }, 150_000);
});
