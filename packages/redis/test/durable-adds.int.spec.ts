import { firstValueFrom } from 'rxjs';
import { Redis } from 'ioredis';
import { InvalidArgumentError } from '@sluice/core';
import { NotReplicatedError, RedisStore } from '@sluice/redis';
import { spawnRedis, uniquePrefix, type SpawnedRedis } from '@sluice/testing';
import { compactFieldsOf } from '../src/codec';
import { sleep } from './helpers';

jest.setTimeout(60_000);

/**
 * Durable adds (`durableAdds`): an add resolves once replicas of its master acknowledged it (`WAIT`),
 * on a master of our own with one replica.
 */
describe('durable adds on a master with one replica', () => {
  let master: SpawnedRedis;
  let replica: SpawnedRedis;
  let onReplica: Redis;
  const stores: RedisStore[] = [];

  beforeAll(async () => {
    master = await spawnRedis();
    replica = await spawnRedis({ config: { replicaof: `${master.host} ${master.port}` } });
    onReplica = new Redis(replica.port, replica.host, { maxRetriesPerRequest: 1 });
    onReplica.on('error', () => undefined);
    for (const deadline = Date.now() + 20_000; Date.now() < deadline;) {
      await sleep(50);
      if (/^master_link_status:up/m.test(await onReplica.info('replication'))) return;
    }
    throw new Error('the replica did not catch up with its master');
  });
  afterAll(async () => {
    for (const s of stores) await s.close();
    onReplica.disconnect();
    await replica.stop();
    await master.stop();
  });

  /** The data of job `id` as the replica holds it: its compact record's (every default) or its hash's. */
  async function dataOnReplica(s: RedisStore, queue: string, id: string): Promise<string | null> {
    const compact = await onReplica.hget(s.keys.compact(queue, id), id);
    if (compact !== null) return compactFieldsOf(compact).d ?? null;
    return onReplica.hget(s.keys.job(queue, id), 'd');
  }

  async function store(
    durableAdds?: { replicas: number; timeoutMs?: number },
    prefix = uniquePrefix('durable'),
  ): Promise<RedisStore> {
    const s = await RedisStore.connect({
      connection: master.url,
      prefix,
      ...(durableAdds ? { durableAdds } : {}),
    });
    stores.push(s);
    return s;
  }

  it('resolves once the replica has the jobs', async () => {
    const s = await store({ replicas: 1 });
    const added = await firstValueFrom(
      s.enqueue(Array.from({ length: 50 }, (_, n) => ({ queue: 'mail', data: { n } }))),
    );
    expect(added).toHaveLength(50);
    // Read on the replica at once, without waiting for it: every record is there.
    for (const { id } of added) {
      expect(await dataOnReplica(s, 'mail', id)).not.toBeNull();
    }
  });

  it('sends the script again to a master that lost it (NOSCRIPT), and still waits for the replica', async () => {
    const s = await store({ replicas: 1 });
    const admin = new Redis(master.port, master.host);
    try {
      await admin.script('FLUSH');
      const before = Number(/^cmdstat_eval:calls=(\d+)/m.exec(await admin.info('commandstats'))?.[1] ?? 0);
      const [added] = await firstValueFrom(s.enqueue([{ queue: 'flushed', data: 7 }]));
      const after = Number(/^cmdstat_eval:calls=(\d+)/m.exec(await admin.info('commandstats'))?.[1] ?? 0);
      expect(after).toBe(before + 1);
      expect(await dataOnReplica(s, 'flushed', added!.id)).toBe('7');
    } finally {
      admin.disconnect();
    }
  });

  it('fails with NotReplicatedError when fewer replicas answer in time; the jobs are on the master', async () => {
    const s = await store({ replicas: 2, timeoutMs: 200 });
    const started = Date.now();
    const error = await firstValueFrom(
      s.enqueue([
        { queue: 'mail', data: 'a', id: 'order-1' },
        { queue: 'mail', data: 'b', id: 'order-2' },
      ]),
    ).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(NotReplicatedError);
    expect(error).toMatchObject({ acknowledged: 1, wanted: 2, ids: ['order-1', 'order-2'], queue: 'mail' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(150); // WAIT waited its timeout
    // The add happened: adding again with the same ids is answered as a duplicate.
    const plain = await store(undefined, s.keys.prefix);
    const again = await firstValueFrom(
      plain.enqueue([
        { queue: 'mail', data: 'a', id: 'order-1' },
        { queue: 'mail', data: 'b', id: 'order-2' },
      ]),
    );
    expect(again.map((r) => r.duplicate)).toEqual([true, true]);
  });

  it('fails while the replica does not answer, and resolves again once it does', async () => {
    const s = await store({ replicas: 1, timeoutMs: 300 });
    replica.pause();
    try {
      await expect(firstValueFrom(s.enqueue([{ queue: 'sms', data: 1 }]))).rejects.toThrow(
        NotReplicatedError,
      );
    } finally {
      replica.resume();
    }
    const [added] = await firstValueFrom(s.enqueue([{ queue: 'sms', data: 2 }]));
    expect(await dataOnReplica(s, 'sms', added!.id)).toBe('2');
  });

  it('refuses settings that cannot work', async () => {
    for (const durableAdds of [{ replicas: 0 }, { replicas: 1.5 }, { replicas: 1, timeoutMs: 0 }]) {
      await expect(
        RedisStore.connect({ connection: master.url, prefix: uniquePrefix('durable'), durableAdds }),
      ).rejects.toThrow(InvalidArgumentError);
    }
  });
});
