import { setTimeout as sleep } from 'node:timers/promises';
import type { AppEvent } from './event';

/** One `insertMany` call as the database saw it. */
export interface Write {
  /** When the call started (ms). */
  readonly at: number;
  readonly rows: number;
}

/**
 * A stand-in for a database whose cost is per call, not per row (a round trip and a commit): every
 * `insertMany` takes `latencyMs` however many rows it carries. One connection: calls never overlap.
 */
export class SimulatedDatabase {
  readonly writes: Write[] = [];
  /** How many times each event id was inserted. */
  readonly inserted = new Map<string, number>();
  private busy = false;

  constructor(private readonly latencyMs = 20) {}

  async insertMany(events: readonly AppEvent[]): Promise<void> {
    if (this.busy) throw new Error('the connection is busy: calls must not overlap');
    this.busy = true;
    this.writes.push({ at: Date.now(), rows: events.length });
    try {
      await sleep(this.latencyMs);
      for (const e of events) this.inserted.set(e.id, (this.inserted.get(e.id) ?? 0) + 1);
    } finally {
      this.busy = false;
    }
  }
}
