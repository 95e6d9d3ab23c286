import { dirname, join } from 'node:path';
import { spawnRedis, type SpawnedRedis } from '@sluice/testing';
import type * as producersSource from '../src/producers';
import type * as workersSource from '../src/worker-process';
import { buildBench } from './smoke';

type WorkerProcessModule = typeof workersSource;
type ProducersModule = typeof producersSource;

/**
 * The throughput benchmark's warm-up (`WorkerSpec.warmup`): a worker process drains one backlog, and
 * its report covers only the jobs after the first `warmup`, with the warm-up's own figures beside it.
 * Both systems, through the compiled worker scripts `npm run bench` forks.
 */
describe('a worker process measured after a warm-up', () => {
  let server: SpawnedRedis;
  let workers: WorkerProcessModule;
  let producers: ProducersModule;

  beforeAll(async () => {
    // One build; the compiled modules fork dist/workers.
    const dist = dirname(buildBench('worker-process.js'));
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    workers = require(join(dist, 'worker-process.js')) as WorkerProcessModule;
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    producers = require(join(dist, 'producers.js')) as ProducersModule;
    server = await spawnRedis();
  }, 120_000);

  afterAll(async () => {
    await server.stop();
  });

  it.each(['sluice', 'bullmq'] as const)(
    '%s: reports the jobs after the warm-up, and the warm-up apart',
    async (system) => {
      const prefix = `warmup-test-${system}`;
      const producer = await producers.openProducer(system, server.url, prefix, 'q');
      try {
        await producers.enqueueBulk(producer, 1000, 250);
      } finally {
        await producer.close();
      }
      const worker = await workers.WorkerProcess.fork(system, {
        url: server.url,
        prefix,
        queue: 'q',
        concurrency: 20,
        mode: { kind: 'single' },
        handler: { kind: 'noop' },
        expect: 300,
        warmup: 700,
        recordCalls: true,
      });
      await workers.withWorkers([worker], async () => {
        const before = Date.now();
        worker.start();
        const report = await worker.done(60_000);
        expect(report.warmup?.completed).toBe(700);
        expect(report.warmup?.cpuMs).toBeGreaterThan(0);
        expect(report.completed).toBe(300);
        expect(report.cpuMs).toBeGreaterThan(0);
        // The window opened at the warm-up's last completion: after `start`, and its span lies within
        // the whole drain's.
        expect(report.startedAt).toBeGreaterThanOrEqual(before);
        expect(report.doneAt).toBeGreaterThanOrEqual(report.startedAt);
        expect(report.warmup!.ms).toBeLessThanOrEqual(report.startedAt - before + 50);
        // Recordings start with the window: at most the 300 measured jobs' calls (plus those in flight
        // when it opened), not the warm-up's 700.
        expect(report.callSizes.length).toBeGreaterThan(0);
        expect(report.callSizes.length).toBeLessThanOrEqual(300 + 20);
        await worker.stop();
      });
    },
    120_000,
  );
});
