/**
 * The worker of `npm run bench:worker-instructions`, run under Valgrind's callgrind with its
 * instrumentation off (`--instr-atstart=no`): drains the queue `drain` that the parent filled
 * (`drainPipeline` of `../drain`), counting completions on `outcomes$` as the benchmark's worker
 * does, and switches the instrumentation on after `warm` completions and off after `jobs`
 * (`callgrind_control -i on|off <pid>`), so the count covers the jobs after the warm-up only. Prints
 * one line of JSON (`{ "measured": n }`) and exits. Argument: the spec as JSON
 * (`{ url, prefix, batch, jobs, warm }`).
 */
import { execFileSync } from 'node:child_process';
import { silentLogger, Worker } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { drainPipeline } from '../drain';

interface DrainWorkerSpec {
  readonly url: string;
  readonly prefix: string;
  readonly batch: boolean;
  readonly jobs: number;
  readonly warm: number;
}

function instrument(on: boolean): void {
  execFileSync('callgrind_control', ['-i', on ? 'on' : 'off', String(process.pid)], { stdio: 'ignore' });
}

async function main(spec: DrainWorkerSpec): Promise<void> {
  const store = await RedisStore.connect({ url: spec.url, prefix: spec.prefix });
  const worker = new Worker({
    store,
    pipelines: [drainPipeline(spec.batch, () => undefined)],
    logger: silentLogger,
  });
  let completed = 0;
  const drained = new Promise<void>((resolve) => {
    worker.outcomes$.subscribe((outcome) => {
      if (outcome.kind !== 'completed') return;
      completed++;
      if (completed === spec.warm) instrument(true);
      if (completed === spec.jobs) {
        instrument(false);
        resolve();
      }
    });
  });
  if (spec.warm === 0) instrument(true);
  worker.start();
  await drained;
  await worker.close({ timeoutMs: 30_000 });
  await store.close();
  process.stdout.write(`${JSON.stringify({ measured: spec.jobs - spec.warm })}\n`);
}

main(JSON.parse(process.argv[2] ?? '{}') as DrainWorkerSpec).then(
  () => process.exit(0),
  (error: unknown) => {
    process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
