import { Queue as BullQueue } from 'bullmq';
import { Queue } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { bullmqConnection } from './bullmq-connection';
import { now } from './clock';
import type { BenchPayload } from './protocol';
import type { System } from './worker-process';

/** The producer side of a benchmark, in the parent process: each system's own client API. */
export interface Producer {
  /** One bulk add (Sluice `Queue.addBulk`, BullMQ `Queue.addBulk`). */
  addBulk(payloads: readonly BenchPayload[]): Promise<void>;
  /** One add of one job (Sluice `Queue.add`, BullMQ `Queue.add`). */
  add(payload: BenchPayload): Promise<void>;
  close(): Promise<void>;
}

/** Opens a producer of `system` on `queue` under the run's key prefix. */
export async function openProducer(
  system: System,
  url: string,
  prefix: string,
  queue: string,
): Promise<Producer> {
  switch (system) {
    case 'sluice': {
      const store = await RedisStore.connect({ url, prefix });
      const q = new Queue<BenchPayload>(store, queue);
      return {
        addBulk: async (payloads) => {
          await q.addBulk(payloads.map((data) => ({ data })));
        },
        add: async (payload) => {
          await q.add(payload);
        },
        close: () => store.close(),
      };
    }
    case 'bullmq': {
      const q = new BullQueue<BenchPayload>(queue, { connection: bullmqConnection(url), prefix });
      await q.waitUntilReady();
      return {
        addBulk: async (payloads) => {
          await q.addBulk(payloads.map((data) => ({ name: 'job', data })));
        },
        add: async (payload) => {
          await q.add('job', payload);
        },
        close: () => q.close(),
      };
    }
  }
}

/** The small payload of job `i`: `{"to":"user<i>@example.com"}`. */
export function payload(i: number): BenchPayload {
  return { to: `user${i}@example.com` };
}

/**
 * Adds `total` jobs with bulk adds of `chunk` jobs each, one after another, and returns the elapsed
 * time in ms (payloads are built inside the timed loop, the same way for both systems).
 */
export async function enqueueBulk(producer: Producer, total: number, chunk: number): Promise<number> {
  const started = now();
  for (let i = 0; i < total; i += chunk) {
    const n = Math.min(chunk, total - i);
    await producer.addBulk(Array.from({ length: n }, (_, j) => payload(i + j)));
  }
  return now() - started;
}

/**
 * Adds jobs one at a time at a steady `perSecond` for `durationMs` (each add is its own call, not
 * awaited before the next is due, so a slow add does not slow the schedule). Each payload carries
 * the producer's clock in `t`, read just before its add. Resolves when every add has resolved, with
 * the number added, the rate achieved (adds issued per second, first to last) and when the first
 * and the last add were issued.
 */
export async function enqueueSteady(
  producer: Producer,
  perSecond: number,
  durationMs: number,
): Promise<{
  readonly added: number;
  readonly rate: number;
  readonly startedAt: number;
  readonly endedAt: number;
}> {
  const total = Math.round((perSecond * durationMs) / 1000);
  const pending: Promise<void>[] = [];
  const started = now();
  let added = 0;
  await new Promise<void>((resolve, reject) => {
    const tick = (): void => {
      const due = Math.min(total, Math.floor(((now() - started) * perSecond) / 1000) + 1);
      while (added < due) {
        pending.push(producer.add({ ...payload(added), t: now() }).catch(reject));
        added++;
      }
      if (added >= total) {
        resolve();
        return;
      }
      // Wake up when the next job is due (timers fire a little late; the loop above catches up).
      const nextAt = started + (added * 1000) / perSecond;
      setTimeout(tick, Math.max(0, nextAt - now()));
    };
    tick();
  });
  const endedAt = now();
  await Promise.all(pending);
  const rate = added > 1 ? ((added - 1) * 1000) / Math.max(1, endedAt - started) : NaN;
  return { added, rate, startedAt: started, endedAt };
}
