import type { Logger } from '@sluice/core';
import type { RedisClient } from './scripts';

/** A handler registered on a channel; `ready` resolves once Redis confirmed the subscription. */
export interface Listener {
  readonly ready: Promise<void>;
  close(): void;
}

/**
 * Shares one subscriber connection between every channel the store listens on: a channel is
 * subscribed while at least one listener wants it. ioredis subscribes again after a reconnect.
 * `sharded` (a store on a Redis Cluster): the channels are shard channels (`SSUBSCRIBE`), which the
 * scripts publish on with `SPUBLISH`; the client must be a Cluster client with `shardedSubscribers`.
 */
export class PubSub {
  private readonly handlers = new Map<string, Set<(message: string) => void>>();
  private readonly subscribed = new Map<string, Promise<void>>();

  constructor(
    private readonly client: RedisClient,
    private readonly logger: Logger,
    private readonly sharded = false,
  ) {
    client.on(sharded ? 'smessage' : 'message', (channel: string, message: string) => {
      const set = this.handlers.get(channel);
      if (!set) return;
      for (const handler of [...set]) handler(message);
    });
  }

  /** Starts listening on `channel`. */
  listen(channel: string, handler: (message: string) => void): Listener {
    let set = this.handlers.get(channel);
    if (!set) {
      set = new Set();
      this.handlers.set(channel, set);
    }
    set.add(handler);
    let ready = this.subscribed.get(channel);
    if (!ready) {
      ready = (this.sharded ? this.client.ssubscribe(channel) : this.client.subscribe(channel)).then(
        () => undefined,
        (error: unknown) => {
          this.subscribed.delete(channel);
          this.logger.warn('redis subscribe failed', { channel, error: String(error) });
          throw error;
        },
      );
      // Callers may not wait for it; a failure is logged above.
      ready.catch(() => undefined);
      this.subscribed.set(channel, ready);
    }
    let closed = false;
    const owner = set;
    return {
      ready,
      close: () => {
        if (closed) return;
        closed = true;
        owner.delete(handler);
        if (owner.size === 0 && this.handlers.get(channel) === owner) {
          this.handlers.delete(channel);
          this.subscribed.delete(channel);
          (this.sharded ? this.client.sunsubscribe(channel) : this.client.unsubscribe(channel)).catch(
            () => undefined,
          );
        }
      },
    };
  }
}
