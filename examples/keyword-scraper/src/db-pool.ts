import { setTimeout as sleep } from 'node:timers/promises';

/** A connection from the pool: enough to store a keyword's results. */
export interface Connection {
  saveResults(keyword: string, count: number): Promise<void>;
}

/**
 * A stand-in for a database connection pool of `size` connections. A caller that finds every
 * connection taken has to wait (the pool is exhausted); `peak` and `exhausted` tell whether that
 * ever happened.
 */
export class SimulatedPool {
  inUse = 0;
  peak = 0;
  /** Times a caller found no free connection. */
  exhausted = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly size: number) {}

  async withConnection<R>(work: (connection: Connection) => Promise<R>): Promise<R> {
    if (this.inUse < this.size) {
      this.inUse++;
    } else {
      this.exhausted++;
      await new Promise<void>((resolve) => this.waiting.push(resolve)); // handed over by a release
    }
    this.peak = Math.max(this.peak, this.inUse);
    try {
      return await work({ saveResults: () => sleep(20) });
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.inUse--;
    }
  }
}
