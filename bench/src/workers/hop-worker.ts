/**
 * The floor of the latency benchmark (`scenarios/latency.ts`): no job system, only the path every
 * job's start there takes at least once. The parent sends each payload, carrying its clock, to this
 * process through the same Redis, and a message's arrival counts as a handler start and as a
 * completion, so the parent reads the same report as from a real worker: the time from the
 * producer's call to the message in another process, with nothing else done on the way.
 *
 * Two ways of sending (`delivery`): a bare `PUBLISH` to a channel this process subscribes to (how a
 * Sluice add hands its jobs to a parked worker), or an `RPUSH` to a list this process waits on with
 * `BLPOP` (how a BullMQ worker is woken, by its marker list), taking the next message as soon as it
 * has one.
 */
import { Redis } from 'ioredis';
import type { BenchPayload, WorkerSpec } from '../protocol';
import { workerMain, type Recorder, type RunningWorker } from './worker-main';

export type HopDelivery = 'publish' | 'list';

export interface HopSpec extends WorkerSpec {
  readonly delivery: HopDelivery;
}

/**
 * The channel, or the list, of a run: under the run's prefix, so two runs on one server do not hear
 * each other.
 */
export function hopKey(prefix: string, queue: string): string {
  return `${prefix}:${queue}:hop`;
}

async function prepare(base: WorkerSpec, recorder: Recorder): Promise<RunningWorker> {
  const spec = base as HopSpec;
  const client = new Redis(spec.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  const key = hopKey(spec.prefix, spec.queue);
  let started = false;
  let stopped = false;
  const arrived = (message: string): void => {
    if (!started) return;
    recorder.call([JSON.parse(message) as BenchPayload]);
    recorder.completed(1);
  };
  if (spec.delivery === 'publish') {
    client.on('message', (_channel: string, message: string) => {
      arrived(message);
    });
    await client.subscribe(key);
  }
  const waitLoop = async (): Promise<void> => {
    while (!stopped) {
      const popped = await client.blpop(key, 0);
      if (popped) arrived(popped[1]);
    }
  };
  return {
    start: () => {
      started = true;
      if (spec.delivery === 'list') {
        // A closed connection ends the wait with an error: only a failure while running is one.
        waitLoop().catch((error: unknown) => {
          if (!stopped) throw error;
        });
      }
    },
    stop: async () => {
      stopped = true;
      started = false;
      if (spec.delivery === 'list') client.disconnect();
      else await client.quit();
    },
  };
}

if (require.main === module) workerMain({ prepare });
