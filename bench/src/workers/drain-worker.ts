/**
 * The worker of `npm run bench:worker-instructions`, run under Valgrind's callgrind with its
 * instrumentation off (`--instr-atstart=no`): drains the queue `drain` that the parent filled,
 * with the throughput scenario's pipeline, counting completions on `outcomes$` as the benchmark's
 * worker does, and switches the instrumentation on after `warm` completions and off after `jobs`
 * (`callgrind_control -i on|off <pid>`), so the count covers the jobs after the warm-up only. With
 * `cpu` it runs at full speed instead and measures its CPU time (`process.cpuUsage`, every thread)
 * over the same jobs, and where Linux gives each thread's time (`/proc/self/task/<tid>/schedstat`)
 * splits it into the main thread's (the JavaScript) and the other threads' (V8's helpers: the
 * optimizing compiler and the collector's parallel and concurrent work; libuv's). Prints one line
 * of JSON (`{ "measured": n, "cpuUs": µs, "mainUs"?: µs, "otherUs"?: µs }`) and exits.
 * Argument: the spec as JSON (`{ url, prefix, batch, jobs, warm, cpu }`).
 */
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { definePipeline, silentLogger, Worker, type PipelineDefinition } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import type { BenchPayload } from '../protocol';

interface DrainWorkerSpec {
  readonly url: string;
  readonly prefix: string;
  readonly batch: boolean;
  readonly jobs: number;
  readonly warm: number;
  /** Measure CPU time instead of switching callgrind's instrumentation. */
  readonly cpu?: boolean;
}

/**
 * The throughput scenario's Sluice pipelines (`sluice-worker.ts`, `profile.ts`): batches of 100
 * within 10 ms, 10 handler calls at once and a prefetch of 1,000; or one job per call at
 * concurrency 100 and a prefetch of 100. `async` handlers that read the payloads and return.
 */
function pipeline(batch: boolean): PipelineDefinition<BenchPayload> {
  let seen: unknown;
  return batch
    ? definePipeline<BenchPayload>({
        queue: 'drain',
        concurrency: 10,
        prefetch: 1000,
        batch: { size: 100, timeMs: 10 },
        handler: async (jobs) => {
          seen = jobs.map((j) => j.data);
          await Promise.resolve(seen);
        },
      })
    : definePipeline<BenchPayload>({
        queue: 'drain',
        concurrency: 100,
        prefetch: 100,
        handler: async (job) => {
          seen = job.data;
          await Promise.resolve(seen);
        },
      });
}

/**
 * Each thread's CPU time in ns so far, by thread id (the first field of its `schedstat`), or
 * undefined where the system does not give it (not Linux, or no schedstats).
 */
function threadCpuNs(): Map<string, number> | undefined {
  try {
    const times = new Map<string, number>();
    for (const tid of readdirSync('/proc/self/task')) {
      const ns = Number(readFileSync(`/proc/self/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
      if (!Number.isFinite(ns)) return undefined;
      times.set(tid, ns);
    }
    return times;
  } catch {
    return undefined;
  }
}

/** The main thread's and the other threads' CPU µs from `before` to `after` (threads may come and go). */
function splitThreads(
  before: ReadonlyMap<string, number>,
  after: ReadonlyMap<string, number>,
): { readonly mainUs: number; readonly otherUs: number } {
  let mainUs = 0;
  let otherUs = 0;
  for (const [tid, ns] of after) {
    const us = (ns - (before.get(tid) ?? 0)) / 1000;
    if (tid === String(process.pid)) mainUs += us;
    else otherUs += us;
  }
  return { mainUs, otherUs };
}

function instrument(on: boolean): void {
  execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' });
}

async function main(spec: DrainWorkerSpec): Promise<void> {
  const store = await RedisStore.connect({ url: spec.url, prefix: spec.prefix });
  const worker = new Worker({
    store,
    pipelines: [pipeline(spec.batch)],
    logger: silentLogger,
  });
  let completed = 0;
  let cpuAtStart = process.cpuUsage();
  let threadsAtStart: Map<string, number> | undefined;
  let cpuUs = 0;
  let threads: { readonly mainUs: number; readonly otherUs: number } | undefined;
  const start = (): void => {
    if (spec.cpu) {
      threadsAtStart = threadCpuNs();
      cpuAtStart = process.cpuUsage();
    } else instrument(true);
  };
  const stop = (): void => {
    if (spec.cpu) {
      const used = process.cpuUsage(cpuAtStart);
      const threadsAtStop = threadCpuNs();
      cpuUs = used.user + used.system;
      if (threadsAtStart && threadsAtStop) threads = splitThreads(threadsAtStart, threadsAtStop);
    } else instrument(false);
  };
  const drained = new Promise<void>((resolve) => {
    worker.outcomes$.subscribe((outcome) => {
      if (outcome.kind !== 'completed') return;
      completed++;
      if (completed === spec.warm) start();
      if (completed === spec.jobs) {
        stop();
        resolve();
      }
    });
  });
  if (spec.warm === 0) start();
  worker.start();
  await drained;
  await worker.close({ timeoutMs: 30_000 });
  await store.close();
  process.stdout.write(`${JSON.stringify({ measured: spec.jobs - spec.warm, cpuUs, ...threads })}\n`);
}

main(JSON.parse(process.argv[2] ?? '{}') as DrainWorkerSpec).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
