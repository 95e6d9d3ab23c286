import { firstValueFrom, filter, take, type Observable } from 'rxjs';
import type { Cluster, Redis } from 'ioredis';
import { RedisStore } from '@sluice/redis';
import { clientCount, storeFixture, useRedisClusterWithAdmin } from './helpers';

/** Sums `cmdstat_<name>` calls over the masters. */
async function calls(masters: readonly Redis[], name: string): Promise<number> {
  let sum = 0;
  for (const node of masters) {
    const info = await node.info('commandstats');
    const match = new RegExp(`^cmdstat_${name}:calls=(\\d+)`, 'm').exec(info);
    sum += match ? Number(match[1]) : 0;
  }
  return sum;
}

/** Connections of a master holding shard-channel subscriptions, with how many each holds (CLIENT LIST `ssub`). */
async function shardSubscribers(node: Redis): Promise<number[]> {
  const list = (await node.client('LIST')) as string;
  return list
    .split('\n')
    .map((line) => Number(/ ssub=(\d+)/.exec(line)?.[1] ?? 0))
    .filter((n) => n > 0);
}

/** The first value of `source` that passes `ok`; a wait the test abandons (a failure) is not reported twice. */
function first<T>(source: Observable<T>, ok: (value: T) => boolean = () => true): Promise<T> {
  const value = firstValueFrom(source.pipe(filter(ok), take(1)));
  value.catch(() => undefined);
  return value;
}

/**
 * On a Cluster the store uses sharded pub/sub: scripts and the store publish with `SPUBLISH` (the
 * message goes to the master that owns the channel's slot, not to every node, as `PUBLISH` would), and
 * a store listens with `SSUBSCRIBE` over at most one connection per master, however many queues.
 */
describe('pub/sub of RedisStore on a 3-master Redis Cluster', () => {
  const cluster = useRedisClusterWithAdmin();

  it('publishes wake-ups, cancellations and settings with SPUBLISH; another store hears them for queues on every master over one connection per master', async () => {
    const admin: Cluster = cluster.admin;
    const connection = { cluster: { nodes: cluster.startupNodes } };
    const fx = await storeFixture(admin, { connection }, 'cluster-pubsub');
    // Another process on the same prefix; settings polled rarely, so a change it sees came over pub/sub.
    const other = await RedisStore.connect({ connection, prefix: fx.prefix, settingsPollMs: 600_000 });
    try {
      const masters = admin.nodes('master');
      expect(masters).toHaveLength(3);
      const queues = Array.from({ length: 12 }, (_, i) => `q-${i}`);
      // The queues' slots fall on every master (so every master's shard channels are used).
      const owners = new Set<string>();
      for (const q of queues) {
        const slot = await admin.cluster('KEYSLOT', fx.store.keys.queue(q).wakeChannel);
        const [master] = admin.slots[slot] ?? [];
        if (master) owners.add(master);
      }
      expect(owners.size).toBe(3);

      const published = await calls(masters, 'publish');
      const sharded = await calls(masters, 'spublish');
      const subscribersBefore = (await Promise.all(masters.map(shardSubscribers))).flat().length;

      // The other store listens on every queue: wake-ups, cancellations and settings (36 channels).
      const woken = queues.map((q) => first(other.wakeups(q)));
      const paused = queues.map((q) => first(other.settings(q), (s) => s.paused));
      const cancelled = queues.map((q) => first(other.cancellations(q)));
      // Subscribed once each listener's subscription is confirmed: the settings stream reads the
      // current settings only after that, so its first value (not paused) says so.
      await Promise.all(queues.map((q) => first(other.settings(q))));
      const channels = (
        await Promise.all(masters.map((m) => m.call('PUBSUB', 'SHARDCHANNELS', `${fx.prefix}*`)))
      )
        .flat()
        .map(String);
      for (const q of queues) {
        const k = fx.store.keys.queue(q);
        expect(channels).toEqual(expect.arrayContaining([k.wakeChannel, k.cancelChannel, k.settingsChannel]));
      }
      // No classic channel of this prefix on any node.
      for (const m of masters) expect(await m.call('PUBSUB', 'CHANNELS', `${fx.prefix}*`)).toEqual([]);
      // At most one more subscriber connection per master for 36 channels (12 queues), not one per queue.
      const subscribers = (await Promise.all(masters.map(shardSubscribers))).flat();
      expect(subscribers.length - subscribersBefore).toBeLessThanOrEqual(masters.length);
      expect(subscribers.reduce((a, b) => a + b, 0)).toBeGreaterThanOrEqual(36);

      // Wake-ups: an add to each queue.
      await firstValueFrom(fx.store.enqueue(queues.map((queue) => ({ queue, data: queue }))));
      await Promise.all(woken);
      // Cancellations: a running job of each queue, cancelled from the first store.
      const ids: string[] = [];
      for (const q of queues) {
        const [job] = (await firstValueFrom(fx.store.reserve(q, 1, { leaseMs: 30_000 }))).jobs;
        ids.push(job!.id);
        expect(await fx.store.cancel(q, job!.id)).toBe('signalled'); // running: its worker is told
      }
      expect(await Promise.all(cancelled)).toEqual(ids);
      // Settings: each queue paused from the first store.
      for (const q of queues) await fx.store.pause(q);
      expect((await Promise.all(paused)).every((s) => s.paused)).toBe(true);

      // Every message went by SPUBLISH (from the scripts: adds, cancels, settings); none by PUBLISH.
      expect(await calls(masters, 'publish')).toBe(published);
      expect((await calls(masters, 'spublish')) - sharded).toBeGreaterThanOrEqual(3 * queues.length);
    } finally {
      await other.close();
      await fx.cleanup!();
    }
  });

  it('holds a few connections per master for calls and pub/sub whatever the number of queues, and up to two per queue whose events are read', async () => {
    const admin: Cluster = cluster.admin;
    const masters = admin.nodes('master');
    const count = (): Promise<number> => clientCount(masters);
    const before = await count();
    const connection = { cluster: { nodes: cluster.startupNodes } };
    const fx = await storeFixture(admin, { connection }, 'cluster-pubsub');
    try {
      const queues = Array.from({ length: 12 }, (_, i) => `c-${i}`);
      // Calls and pub/sub on queues of every master.
      await firstValueFrom(fx.store.enqueue(queues.map((queue) => ({ queue, data: queue }))));
      await Promise.all(queues.map((q) => first(fx.store.settings(q))));
      const calls = (await count()) - before;
      // Events of every queue: a blocking reader each (XREAD BLOCK cannot span slots).
      const events = queues.map((q) => first(fx.store.events(q)));
      await firstValueFrom(fx.store.enqueue(queues.map((queue) => ({ queue, data: queue }))));
      for (const q of queues) {
        const [job] = (await firstValueFrom(fx.store.reserve(q, 1, { leaseMs: 30_000 }))).jobs;
        await firstValueFrom(
          fx.store.settle([
            {
              queue: q,
              id: job!.id,
              token: job!.lease.token,
              kind: 'completed',
              result: null,
              durationMs: 1,
            },
          ]),
        );
      }
      await Promise.all(events);
      const withEvents = (await count()) - before;
      console.log(
        `connections of one store on 3 masters, 12 queues: ${calls} for calls and pub/sub, ` +
          `${withEvents} with the events of every queue read`,
      );
      // One per master for calls, one per master for shard subscriptions, one reading the slot map.
      expect(calls).toBeLessThanOrEqual(2 * masters.length + 1);
      expect(withEvents - calls).toBeLessThanOrEqual(2 * queues.length);
    } finally {
      await fx.cleanup!();
    }
  });

  it('obliterating a queue is heard by another store (a store-wide shard channel)', async () => {
    const connection = { cluster: { nodes: cluster.startupNodes } };
    const fx = await storeFixture(cluster.admin, { connection }, 'cluster-pubsub');
    const other = await RedisStore.connect({ connection, prefix: fx.prefix });
    try {
      await firstValueFrom(other.enqueue([{ queue: 'gone', data: 1 }]));
      const before = await calls(cluster.admin.nodes('master'), 'publish');
      await fx.store.obliterate('gone');
      // The other store registers the queue again with its next add once it heard the obliteration
      // (until then it takes the queue for registered).
      const deadline = Date.now() + 10_000;
      let listed = false;
      while (!listed && Date.now() < deadline) {
        await firstValueFrom(other.enqueue([{ queue: 'gone', data: 2 }]));
        listed = (await cluster.admin.smembers(other.keys.queues)).includes('gone');
        if (!listed) await new Promise((resolve) => setTimeout(resolve, 50));
      }
      expect(listed).toBe(true);
      expect(await calls(cluster.admin.nodes('master'), 'publish')).toBe(before);
    } finally {
      await other.close();
      await fx.cleanup!();
    }
  });
});
