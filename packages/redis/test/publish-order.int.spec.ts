import { createHash } from 'node:crypto';
import { firstValueFrom } from 'rxjs';
import type { Redis } from 'ioredis';
import { execScript, type LoadedScript } from '../src/scripts';
import { adminClient, sleep, storeFixture, useRedisWithAdmin } from './helpers';

/** A script that publishes on its first key and answers 1. */
const publishing: LoadedScript = (() => {
  const source = "redis.call('PUBLISH', KEYS[1], 'm') return 1";
  return {
    name: 'enqueue',
    versionedName: 'test:publishing',
    source,
    sha: createHash('sha1').update(source).digest('hex'),
    numberOfKeys: 1,
  } as LoadedScript;
})();

/**
 * What a process sees first, five times over: the message published on `channel` or the answer of
 * `call`, with 20 ms between calls (each one its own turn of the server).
 */
async function orderOf(subscriber: Redis, channel: string, call: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const onMessage = (ch: string): void => {
    if (ch === channel) seen.push('message');
  };
  subscriber.on('message', onMessage);
  try {
    for (let i = 0; i < 5; i++) {
      await call();
      seen.push('reply');
      for (let w = 0; w < 100 && seen.filter((s) => s === 'message').length <= i; w++) await sleep(5);
      await sleep(20);
    }
  } finally {
    subscriber.off('message', onMessage);
  }
  return seen;
}

describe('Redis writes what an add publishes before its reply', () => {
  const redis = useRedisWithAdmin();
  let subscriber: Redis;
  beforeAll(async () => {
    subscriber = adminClient(redis.url);
    await subscriber.ping();
  });
  afterAll(() => {
    subscriber.disconnect();
  });

  it("a plain call's reply goes out before its message (the order the store turns around)", async () => {
    const channel = `order-plain-${Date.now()}`;
    await subscriber.subscribe(channel);
    const order = await orderOf(subscriber, channel, () =>
      execScript(redis.admin, publishing, [channel], [], { queue: 'q' }),
    );
    await subscriber.unsubscribe(channel);
    expect(order).toEqual(Array(5).fill(['reply', 'message']).flat());
  });

  it('a call that publishes first has its message written before its reply', async () => {
    const channel = `order-first-${Date.now()}`;
    await subscriber.subscribe(channel);
    const order = await orderOf(subscriber, channel, () =>
      execScript(redis.admin, publishing, [channel], [], { queue: 'q' }, [], undefined, undefined, true),
    );
    await subscriber.unsubscribe(channel);
    expect(order).toEqual(Array(5).fill(['message', 'reply']).flat());
  });

  it("the store's add: its wake-up (or handoff) message arrives before its reply", async () => {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'order');
    try {
      const channel = fx.store.keys.queue('q').wakeChannel;
      // The first add may send the script's source (the server has not cached it), a command long
      // enough to arrive in several reads, the PING answered in an earlier one: not timed.
      await firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 0 }]));
      await subscriber.subscribe(channel);
      const order = await orderOf(subscriber, channel, () =>
        firstValueFrom(fx.store.enqueue([{ queue: 'q', data: 1 }])),
      );
      await subscriber.unsubscribe(channel);
      expect(order).toEqual(Array(5).fill(['message', 'reply']).flat());
    } finally {
      await fx.cleanup!();
    }
  });
});
