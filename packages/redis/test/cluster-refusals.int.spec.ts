import { firstValueFrom } from 'rxjs';
import { StoreError } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { isClusterRefusal, isNoScript, retryClusterRefusals } from '../src/scripts';
import {
  errorStats,
  sleep,
  startSlotMove,
  storeFixture,
  useRedisClusterWithAdmin,
  type SlotMove,
} from './helpers';

describe('calls a Redis Cluster refuses without running them', () => {
  it('are told apart from every other failure', () => {
    for (const message of [
      'TRYAGAIN Multiple keys request during rehashing of slot',
      'CLUSTERDOWN The cluster is down',
      'MOVED 3999 127.0.0.1:6381',
      'ASK 3999 127.0.0.1:6381',
      'Too many Cluster redirections. Last error: ReplyError: TRYAGAIN Multiple keys request during rehashing of slot',
      'Too many Cluster redirections. Last error: Error: CLUSTERDOWN The cluster is down',
      // Stopped by its slot guard, the first thing a script of the Cluster set does: nothing written.
      'ERR Script attempted to access a non local key in a cluster node script: ee06e574f39216fe59612749396e7431359ba67a, on @user_script:17.',
      'ERR Script attempted to execute a command while the cluster is down script: 1b2c, on @user_script:17.',
    ]) {
      expect([message, isClusterRefusal(new Error(message))]).toEqual([message, true]);
    }
    for (const message of [
      // Maybe ran: the connection closed with the call in flight.
      'Connection is closed.',
      'Too many Cluster redirections. Last error: Error: Connection is closed.',
      'Command timed out',
      // Not a Cluster's refusal: a script touching keys of two slots is a bug.
      'ERR Script attempted to access keys that do not hash to the same slot script: 1b2c, on @user_script:40.',
    ]) {
      expect([message, isClusterRefusal(new Error(message))]).toEqual([message, false]);
    }
  });

  it('include no NOSCRIPT, which is answered by sending the script, also after redirections', () => {
    for (const message of [
      'NOSCRIPT No matching script. Please use EVAL.',
      'Too many Cluster redirections. Last error: ReplyError: NOSCRIPT No matching script. Please use EVAL.',
    ]) {
      expect([message, isNoScript(new Error(message)), isClusterRefusal(new Error(message))]).toEqual([
        message,
        true,
        false,
      ]);
    }
    expect(isNoScript(new Error('ERR unknown command'))).toBe(false);
    expect(isNoScript(new Error('TRYAGAIN Multiple keys request'))).toBe(false);
  });

  it('are tried again for a bounded time, other failures at once', async () => {
    let n = 0;
    const refusedTwice = (): Promise<string> =>
      ++n <= 2 ? Promise.reject(new Error('TRYAGAIN Multiple keys request')) : Promise.resolve('ran');
    await expect(retryClusterRefusals(refusedTwice, 5_000)).resolves.toBe('ran');
    expect(n).toBe(3);

    n = 0;
    const closed = (): Promise<string> => {
      n++;
      return Promise.reject(new Error('Connection is closed.'));
    };
    await expect(retryClusterRefusals(closed, 5_000)).rejects.toThrow('Connection is closed.');
    expect(n).toBe(1);

    n = 0;
    const always = (): Promise<string> => {
      n++;
      return Promise.reject(new Error('CLUSTERDOWN The cluster is down'));
    };
    const started = Date.now();
    await expect(retryClusterRefusals(always, 300)).rejects.toThrow('CLUSTERDOWN');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(n).toBeGreaterThan(1);
  });
});

/**
 * While a queue's slot moves to another master, a script whose keys are split between the two is
 * refused with `TRYAGAIN` (it does not run); ioredis gives up after its redirections (about 1.6 s).
 * The store tries such calls again until the move completes (`clusterRetryMs`).
 */
describe('RedisStore on a 3-master Redis Cluster while a queue’s slot moves', () => {
  const cluster = useRedisClusterWithAdmin();

  it('a call refused while the keys are split runs once the move completes; with clusterRetryMs 0 it fails', async () => {
    const connection = { cluster: { nodes: cluster.startupNodes } };
    const fx = await storeFixture(cluster.admin, { connection }, 'cluster-move');
    const impatient = await RedisStore.connect({ connection, prefix: fx.prefix, clusterRetryMs: 0 });
    let move: SlotMove | undefined;
    try {
      const queue = 'moving';
      await firstValueFrom(fx.store.enqueue([1, 2, 3].map((n) => ({ queue, data: n }))));
      const keys = fx.store.keys.queue(queue);
      move = await startSlotMove(cluster.admin, keys.settings);
      const tryAgains = async () => (await errorStats(move!.source)).TRYAGAIN ?? 0;
      const before = await tryAgains();
      // One of the keys a reserve is given goes ahead: its keys are now split between two masters.
      await move.moveKeys([keys.counters]);

      const impatientReserve = firstValueFrom(impatient.reserve(queue, 3, { leaseMs: 30_000 }));
      const reserve = firstValueFrom(fx.store.reserve(queue, 3, { leaseMs: 30_000 }));
      reserve.catch(() => undefined); // awaited below; a failure before then is the test's own
      // Past ioredis' own redirections (16 × 100 ms).
      await expect(impatientReserve).rejects.toThrow(StoreError);
      await expect(impatientReserve).rejects.toThrow(/Too many Cluster redirections/);
      await sleep(500);
      expect(await tryAgains()).toBeGreaterThan(before);
      await move.finish();

      const reserved = await reserve;
      expect(reserved.jobs.map((j) => j.data).sort()).toEqual([1, 2, 3]);
      // Nothing ran twice, nothing got lost: the three jobs are leased once, on the new master.
      const stats = await fx.store.stats(queue);
      expect(stats.counts.running).toBe(3);
      expect(stats.counts.ready).toBe(0);
    } finally {
      // A failed run leaves the slot half moved: finish it, so the keys can be deleted.
      await move?.finish().catch(() => undefined);
      await impatient.close();
      await fx.cleanup!();
    }
  }, 30_000);

  it('scripts that meet moved job records change nothing, and run once the move completes', async () => {
    const connection = { cluster: { nodes: cluster.startupNodes } };
    const fx = await storeFixture(cluster.admin, { connection }, 'cluster-records');
    let move: SlotMove | undefined;
    try {
      const queue = 'records';
      const keys = fx.store.keys.queue(queue);
      const reserve = (n: number) => firstValueFrom(fx.store.reserve(queue, n, { leaseMs: 30_000 }));
      // Every key the scripts below are given exists (one given a key missing on a moving slot is
      // refused before it runs): settings (a retention), a finished and a dead job, one scheduled.
      await fx.store.updateQueueConfig(queue, { retention: { keep: 'all' } });
      await firstValueFrom(
        fx.store.enqueue([
          { queue, data: 'done' },
          { queue, data: 'doomed', maxAttempts: 1 },
        ]),
      );
      const early = (await reserve(2)).jobs;
      const failed = { name: 'Error', message: 'no' };
      await firstValueFrom(
        fx.store.settle([
          {
            kind: 'completed',
            queue,
            id: early[0]!.id,
            token: early[0]!.lease.token,
            result: 1,
            durationMs: 1,
          },
          {
            kind: 'dead',
            queue,
            id: early[1]!.id,
            token: early[1]!.lease.token,
            reason: 'no',
            error: failed,
          },
        ]),
      );
      await firstValueFrom(
        fx.store.enqueue([
          { queue, data: 'later', delayMs: 600_000 },
          // A name: a record of its own (the others' are fields of the compact hash), so it can stay.
          { queue, data: 'a', name: 'a' },
          { queue, data: 'b' },
          { queue, data: 'c' },
          { queue, data: 'd' },
          { queue, data: 'e' },
          { queue, data: 'g' },
        ]),
      );
      const [a, b, c] = (await reserve(3)).jobs;
      expect([a!.data, b!.data, c!.data]).toEqual(['a', 'b', 'c']);

      // Job records go ahead (all but a's): the compact bucket holding b to g's records, and the
      // hashes of the early jobs (written to by their settle) and of the delayed one. The queue's
      // own keys and its ready list stay behind.
      move = await startSlotMove(cluster.admin, keys.settings);
      const records = (await move.source.cluster('GETKEYSINSLOT', move.slot, 10_000)).filter(
        (k) =>
          (k.startsWith(keys.jobPrefix) || k.startsWith(keys.compactPrefix)) && k !== keys.jobPrefix + a!.id,
      );
      expect(records.sort()).toEqual(
        [
          fx.store.keys.compact(queue, b!.id),
          ...[early[0]!.id, early[1]!.id, '3'].map((id) => keys.jobPrefix + id),
        ].sort(),
      );
      await move.moveKeys(records);

      // Unguarded, a settle of a and b would finish a, then meet b's record gone and stop, a's
      // counters and events unwritten, and its second try would find a finished (lease lost); an
      // add would count an id, then meet its new record's key on the other master.
      const reserved = reserve(3);
      const settled = firstValueFrom(
        fx.store.settle(
          [a!, b!].map((j) => ({
            kind: 'completed' as const,
            queue,
            id: j.id,
            token: j.lease.token,
            result: 2,
            durationMs: 1,
          })),
        ),
      );
      const added = firstValueFrom(fx.store.enqueue([{ queue, data: 'f' }]));
      const outcomes: string[] = [];
      for (const [name, p] of [
        ['reserve', reserved],
        ['settle', settled],
        ['enqueue', added],
      ] as const) {
        (p as Promise<unknown>).then(
          () => outcomes.push(`${name} done`),
          (e: unknown) => outcomes.push(`${name} failed: ${String(e)}`),
        );
      }
      await sleep(500);
      expect(outcomes).toEqual([]); // refused, and tried again while the slot moves

      // A call whose every key has moved is redirected (ASK) to the new master, which has not run the
      // script yet (NOSCRIPT there: the store sends the source), and is refused there too.
      await move.target.script('FLUSH');
      await move.moveKeys([keys.active]);
      const extended = firstValueFrom(
        fx.store.extendLeases(queue, [{ id: c!.id, token: c!.lease.token }], 30_000),
      );
      extended.then(
        () => outcomes.push('extend done'),
        (e: unknown) => outcomes.push(`extend failed: ${String(e)}`),
      );
      await sleep(500);
      expect(outcomes).toEqual([]);
      await move.finish();
      expect(await extended).toEqual({ extended: [c!.id], lost: [] });

      expect((await reserved).jobs.map((j) => j.data)).toEqual(['d', 'e', 'g']);
      expect(await settled).toEqual([
        expect.objectContaining({ id: a!.id, applied: true }),
        expect.objectContaining({ id: b!.id, applied: true }),
      ]);
      expect(await added).toEqual([{ id: '10', duplicate: false }]); // the next id: none counted twice
      const stats = await fx.store.stats(queue);
      expect(stats.counts).toMatchObject({ ready: 1, running: 4, scheduled: 1, completed: 3, dead: 1 });
      expect(stats.totals).toMatchObject({ enqueued: 10, completed: 3 });
      // The outcome events (entries of "i <id> k <kind> …" runs): each completion written once.
      const completions: string[] = [];
      for (const [, fields] of await cluster.admin.xrange(keys.events, '-', '+')) {
        for (let i = 0; i + 3 < fields.length; i++) {
          if (fields[i] === 'i' && fields[i + 2] === 'k' && fields[i + 3] === 'completed') {
            completions.push(fields[i + 1]!);
          }
        }
      }
      expect(completions.sort()).toEqual([early[0]!.id, a!.id, b!.id].sort());
    } finally {
      await move?.finish().catch(() => undefined);
      await fx.cleanup!();
    }
  }, 30_000);
});
