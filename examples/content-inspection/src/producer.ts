import type { Queue } from '@sluice/core';
import type { Message } from './message';

export interface ProducerOptions {
  readonly perSecond: number;
  readonly durationMs: number;
}

/**
 * Adds messages one at a time, as they would arrive from users: `perSecond` of them for
 * `durationMs`. Every 100th message mentions something forbidden. Resolves to the ids it added.
 */
export async function produceMessages(queue: Queue<Message>, options: ProducerOptions): Promise<string[]> {
  const total = Math.round((options.perSecond * options.durationMs) / 1000);
  const ids: string[] = [];
  const started = Date.now();
  while (ids.length < total) {
    // Catch up with the schedule: the messages that should have arrived by now, each added on its own.
    const due = Math.min(total, Math.floor(((Date.now() - started) * options.perSecond) / 1000));
    const adds: Promise<unknown>[] = [];
    for (let n = ids.length; n < due; n++) {
      const id = `msg-${n}`;
      ids.push(id);
      const text = n % 100 === 13 ? `message ${n} mentions something forbidden` : `message ${n} is fine`;
      adds.push(queue.add({ id, text }));
    }
    await Promise.all(adds);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return ids;
}
