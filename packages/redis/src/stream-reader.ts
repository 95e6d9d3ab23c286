import type { Logger } from '@sluice/core';
import type { RedisClient } from './scripts';

/** One entry of a Redis stream: its id and flat field/value list. */
export interface StreamEntry {
  readonly id: string;
  readonly fields: readonly string[];
}

/** Orders stream ids (`<ms>-<seq>`). */
export function compareStreamIds(a: string, b: string): number {
  const [am = '0', as = '0'] = a.split('-');
  const [bm = '0', bs = '0'] = b.split('-');
  const ms = BigInt(am) - BigInt(bm);
  if (ms !== 0n) return ms < 0n ? -1 : 1;
  const seq = BigInt(as) - BigInt(bs);
  return seq === 0n ? 0 : seq < 0n ? -1 : 1;
}

type XReadReply = [key: string, entries: [id: string, fields: string[]][]][] | null;

/**
 * Reads one stream with `XREAD BLOCK` on a connection of its own and hands every entry to the
 * attached handlers. It runs while handlers are attached, resumes from the last id it read after a
 * failure (so an outage loses nothing still in the stream), and stops within one block period once
 * the last handler detaches. Subscribers decide where their own view starts (see `RedisStore.events`).
 */
export class StreamReader {
  private readonly handlers = new Set<(entry: StreamEntry) => void>();
  private running = false;
  private closed = false;
  private lastId = '$';
  private connection: RedisClient | undefined;

  constructor(
    private readonly key: string,
    private readonly connect: () => RedisClient,
    private readonly logger: Logger,
    private readonly blockMs = 1000,
  ) {}

  /** Adds a handler; returns its detach function. */
  attach(handler: (entry: StreamEntry) => void): () => void {
    this.handlers.add(handler);
    return () => {
      this.handlers.delete(handler);
    };
  }

  /** Starts reading after `fromId` unless already running (a running reader is never behind it). */
  ensureRunning(fromId: string): void {
    if (this.running || this.closed || this.handlers.size === 0) return;
    this.running = true;
    this.lastId = fromId;
    void this.loop();
  }

  /** Stops for good; the caller closes the connection. */
  close(): RedisClient | undefined {
    this.closed = true;
    return this.connection;
  }

  // A method, not the field: the loop must see `close()` calls made while it awaited.
  private isClosed(): boolean {
    return this.closed;
  }

  private async loop(): Promise<void> {
    let backoffMs = 100;
    try {
      while (!this.isClosed() && this.handlers.size > 0) {
        this.connection ??= this.connect();
        let reply: XReadReply;
        try {
          reply = await this.connection.xread(
            'COUNT',
            1000,
            'BLOCK',
            this.blockMs,
            'STREAMS',
            this.key,
            this.lastId,
          );
          backoffMs = 100;
        } catch (error) {
          if (this.isClosed()) return;
          this.logger.warn('reading the event stream failed; retrying', {
            stream: this.key,
            error: error instanceof Error ? error.message : String(error),
          });
          await new Promise((resolve) => setTimeout(resolve, backoffMs).unref());
          backoffMs = Math.min(5000, backoffMs * 2);
          continue;
        }
        for (const [, entries] of reply ?? []) {
          for (const [id, fields] of entries) {
            this.lastId = id;
            for (const handler of [...this.handlers]) handler({ id, fields });
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}
