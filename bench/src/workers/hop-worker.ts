/**
 * The floor of the latency benchmark (`scenarios/latency.ts`): no job system, only the path every
 * job's start there takes at least once. This process subscribes to one channel; the parent
 * publishes each payload, carrying its clock, with a bare `PUBLISH` on the same Redis. A message's
 * arrival counts as a handler start and as a completion, so the parent reads the same report as
 * from a real worker: the time from the producer's call to the message in another process, through
 * Redis, with nothing else done on the way.
 */
import { Redis } from 'ioredis';
import type { BenchPayload, WorkerSpec } from '../protocol';
import { workerMain, type Recorder, type RunningWorker } from './worker-main';

/** The channel of a run: under the run's prefix, so two runs on one server do not hear each other. */
export function hopChannel(prefix: string, queue: string): string {
  return `${prefix}:${queue}:hop`;
}

async function prepare(spec: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const subscriber = new Redis(spec.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await subscriber.connect();
  let started = false;
  subscriber.on('message', (_channel: string, message: string) => {
    if (!started) return;
    recorder.call([JSON.parse(message) as BenchPayload]);
    recorder.completed(1);
  });
  await subscriber.subscribe(hopChannel(spec.prefix, spec.queue));
  return {
    start: () => {
      started = true;
    },
    stop: async () => {
      started = false;
      await subscriber.quit();
    },
  };
}

if (require.main === module) workerMain({ prepare });
