/**
 * The BullMQ side of every benchmark, configured from the same {@link WorkerSpec} as the Sluice side.
 * Forked by the parent (`worker-process.ts`); loads only BullMQ, so its RSS is BullMQ's own.
 *
 * - `single` mode: a `Worker` with a processor, `concurrency` jobs at once, and, for a rate limit per
 *   job, BullMQ's own `limiter: { max, duration }`.
 * - `batch` mode: BullMQ (open source) has no batch API, so this is what a BullMQ user writes: a
 *   `Worker` without a processor, a loop that takes up to `size` jobs with `getNextJob` (waiting at
 *   most `timeMs` after the first for more), calls the handler once with all of them, and completes
 *   each with `moveToCompleted`. A limit per call is enforced by the loop itself, on this process's
 *   clock, as an exact sliding window over handler call starts (BullMQ's limiter counts jobs, not
 *   calls); the loop waits for a free slot after gathering a batch, right before the call.
 */
import { Worker, type Job } from 'bullmq';
import { BULLMQ_KEEP_COMPLETED, bullmqConnection } from '../bullmq-connection';
import { now, sleep } from '../clock';
import type { BenchPayload, RateLimitSpec, WorkerSpec } from '../protocol';
import { runHandler, workerMain, type Recorder, type RunningWorker } from './worker-main';

const TOKEN = `bench-${process.pid}`;

/** Call starts of the last `allowed` calls: an exact sliding window, like Sluice's limiter. */
class CallWindow {
  private readonly starts: number[] = [];
  constructor(private readonly limit: RateLimitSpec) {}

  /**
   * Resolves when one more call may start without exceeding the limit, with the time it recorded for
   * the call: the caller starts the call at once and reports that same time as its start.
   */
  async acquire(): Promise<number> {
    for (;;) {
      const t = now();
      while (this.starts.length > 0 && (this.starts[0] ?? 0) <= t - this.limit.periodMs) this.starts.shift();
      if (this.starts.length < this.limit.allowed) {
        this.starts.push(t);
        return t;
      }
      await sleep(Math.max(1, (this.starts[0] ?? t) + this.limit.periodMs - t));
    }
  }
}

async function prepareSingle(spec: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const limit = spec.rateLimit;
  if (limit && limit.per !== 'job') throw new Error('a limit per call needs batch mode');
  const worker = new Worker<BenchPayload>(
    spec.queue,
    async (job: Job<BenchPayload>) => {
      recorder.call([job.data], job.processedOn);
      await runHandler(spec.handler);
    },
    {
      connection: bullmqConnection(spec.url),
      prefix: spec.prefix,
      concurrency: spec.concurrency,
      autorun: false,
      removeOnComplete: BULLMQ_KEEP_COMPLETED,
      ...(limit ? { limiter: { max: limit.allowed, duration: limit.periodMs } } : {}),
    },
  );
  worker.on('completed', () => {
    recorder.completed(1);
  });
  worker.on('error', (error) => {
    process.stderr.write(`bullmq worker error: ${String(error)}\n`);
  });
  await worker.waitUntilReady();
  let running: Promise<void> | undefined;
  return {
    start: () => {
      running = worker.run().catch((error: unknown) => {
        process.stderr.write(`bullmq worker stopped: ${String(error)}\n`);
      });
    },
    stop: async () => {
      await worker.close();
      await running;
    },
  };
}

async function prepareBatch(
  spec: WorkerSpec,
  recorder: Recorder,
  size: number,
  timeMs: number,
): Promise<RunningWorker> {
  const limit = spec.rateLimit;
  if (limit && limit.per !== 'call') throw new Error('batch mode benchmarks a limit per call');
  if (spec.concurrency !== 1) throw new Error('the manual batch loop runs one call at a time');
  const worker = new Worker<BenchPayload>(spec.queue, null, {
    connection: bullmqConnection(spec.url),
    prefix: spec.prefix,
    autorun: false,
    removeOnComplete: BULLMQ_KEEP_COMPLETED,
  });
  worker.on('error', (error) => {
    process.stderr.write(`bullmq worker error: ${String(error)}\n`);
  });
  await worker.waitUntilReady();
  const window = limit ? new CallWindow(limit) : undefined;
  let stopping = false;

  // Typed as always answering a job since BullMQ 6, but it answers undefined when none came.
  const nextJob = (opts?: { block: boolean }): Promise<Job<BenchPayload> | undefined> =>
    worker.getNextJob(TOKEN, opts);
  const gather = async (): Promise<Job<BenchPayload>[]> => {
    const first = await nextJob(); // blocks while the queue is empty
    if (!first) return [];
    const batch = [first];
    const deadline = now() + timeMs;
    while (batch.length < size && !stopping) {
      const job = await nextJob({ block: false });
      if (job) {
        batch.push(job);
        continue;
      }
      const left = deadline - now();
      if (left <= 0) break;
      await sleep(Math.min(left, 5));
    }
    return batch;
  };

  const loop = async (): Promise<void> => {
    while (!stopping) {
      const batch = await gather();
      if (batch.length === 0) continue;
      const slot = await window?.acquire();
      recorder.call(
        batch.map((job) => job.data),
        batch[0]?.processedOn,
        slot,
      );
      await runHandler(spec.handler);
      await Promise.all(batch.map((job) => job.moveToCompleted(undefined, TOKEN, false)));
      recorder.completed(batch.length);
    }
  };

  let running: Promise<void> | undefined;
  return {
    start: () => {
      running = loop().catch((error: unknown) => {
        if (!stopping) process.stderr.write(`bullmq batch loop failed: ${String(error)}\n`);
      });
    },
    stop: async () => {
      stopping = true;
      await worker.close();
      await running;
    },
  };
}

function prepare(spec: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const mode = spec.mode;
  switch (mode.kind) {
    case 'single':
      return prepareSingle(spec, recorder);
    case 'batch':
      return prepareBatch(spec, recorder, mode.size, mode.timeMs);
  }
}

workerMain({ prepare });
