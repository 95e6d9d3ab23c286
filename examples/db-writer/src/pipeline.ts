import { definePipeline } from '@sluice/core';
import type { SimulatedDatabase } from './database';
import { EVENT_QUEUE, type AppEvent } from './event';

/**
 * Writes events to the database in batches that follow the load: an event that finds the database
 * idle is written at once, alone; while a write runs, events gather and go together in the next one
 * (at most 500). No timer to tune: a slow trickle costs no latency, a burst costs few round trips.
 */
export function dbWriterPipeline(db: SimulatedDatabase) {
  return definePipeline<AppEvent>({
    queue: EVENT_QUEUE,
    batch: { adaptive: true, maxSize: 500 },
    // Reserve the next batch from Redis while the current one is being written (without it, a
    // backlog goes out as 1 + 499, 1 + 499, … rows: each reservation's first event finds the writer idle).
    prefetch: 500,
    handler: async (jobs) => {
      await db.insertMany(jobs.map((job) => job.data));
    },
  });
}
