/**
 * Compact records (`lua/includes/compact.lua`): a job added with every default is a field of a
 * compact bucket (128 automatic ids a bucket), not a hash of its own. These tests check the layout itself: where each
 * record is, that one written to moves to a hash of its own, and that nothing deletes a job but
 * leaves its compact record behind. The store contract checks the behaviour on every store.
 */
import { firstValueFrom } from 'rxjs';
import { JobState, type ReservedJob, type Settlement } from '@sluice/core';
import type { RedisStore } from '@sluice/redis';
import { storeFixture, useRedisWithAdmin } from './helpers';

const base = (job: ReservedJob) => ({ queue: job.queue, id: job.id, token: job.lease.token });
const completed = (job: ReservedJob, result?: unknown): Settlement => ({
  ...base(job),
  kind: 'completed',
  result,
  durationMs: 1,
});
const error = { name: 'E', message: 'no' };

describe('RedisStore: compact records', () => {
  const redis = useRedisWithAdmin();
  let fx: Awaited<ReturnType<typeof storeFixture>>;
  let store: RedisStore;
  beforeEach(async () => {
    fx = await storeFixture(redis.admin, { url: redis.url }, 'compact');
    store = fx.store;
  });
  afterEach(async () => {
    await fx.cleanup!();
  });

  const add = async (queue: string, ...data: unknown[]): Promise<string[]> =>
    (await firstValueFrom(store.enqueue(data.map((d) => ({ queue, data: d }))))).map((r) => r.id);
  const reserve = async (queue: string, n: number): Promise<readonly ReservedJob[]> =>
    (await firstValueFrom(store.reserve(queue, n, { leaseMs: 10_000 }))).jobs;
  /** Job `id`'s compact bucket. */
  const bucketOf = (queue: string, id: string): string => store.keys.compact(queue, id);
  /** Every compact bucket of `queue`. */
  const bucketsOf = (queue: string): Promise<string[]> =>
    redis.admin.keys(`${store.keys.queue(queue).compactPrefix}*`);
  /** The number of compact records of `queue`. */
  const compactCount = async (queue: string): Promise<number> => {
    let n = 0;
    for (const key of await bucketsOf(queue)) n += await redis.admin.hlen(key);
    return n;
  };
  /** Where job `id`'s record is: 'compact', 'own', both (a bug) or none. */
  const placeOf = async (queue: string, id: string): Promise<string> => {
    const compact = (await redis.admin.hexists(bucketOf(queue, id), id)) === 1;
    const own = (await redis.admin.exists(store.keys.job(queue, id))) === 1;
    return compact && own ? 'both' : compact ? 'compact' : own ? 'own' : 'none';
  };

  it('keeps a job added with every default as one field of its compact bucket, and one with options in a hash of its own', async () => {
    const keys = store.keys.queue('q');
    const [plain] = await add('q', { to: 'a@example.com' });
    const [withOptions] = (
      await firstValueFrom(store.enqueue([{ queue: 'q', data: 'b', priority: 2, name: 'named' }]))
    ).map((r) => r.id);
    expect(await placeOf('q', plain!)).toBe('compact');
    const value = await redis.admin.hget(bucketOf('q', plain!), plain!);
    expect(value).toMatch(/^c\0\d+\0d\0\{"to":"a@example.com"\}$/);
    expect(await placeOf('q', withOptions!)).toBe('own');
    expect(await redis.admin.hgetall(keys.jobPrefix + withOptions!)).toMatchObject({
      d: '"b"',
      p: '2',
      n: 'named',
    });

    const record = await store.getJob('q', plain!);
    expect(record).toMatchObject({
      id: plain,
      state: JobState.Ready,
      data: { to: 'a@example.com' },
      attempt: 0,
    });
    expect(record?.createdAt).toBe(Number(/^c\0(\d+)\0/.exec(value!)?.[1]));
    expect((await store.listJobs('q', JobState.Ready)).map((j) => j.id).sort()).toEqual(
      [plain, withOptions].sort(),
    );
    // A caller-chosen id equal to a compact job's id is that job: a duplicate, not a second record.
    const [again] = await firstValueFrom(store.enqueue([{ queue: 'q', data: 'other', id: plain! }]));
    expect(again).toMatchObject({ id: plain, duplicate: true });
    expect(await placeOf('q', plain!)).toBe('compact');
    // Reserved: leased from the compact record, its fields whole.
    const jobs = await reserve('q', 2);
    expect(jobs.map((j) => [j.id, j.data])).toEqual([
      [plain, { to: 'a@example.com' }],
      [withOptions, 'b'],
    ]);
    expect(jobs[0]?.createdAt).toBe(record?.createdAt);
    expect(await store.getJob('q', plain!)).toMatchObject({ state: JobState.Running, attempt: 1 });
  });

  it('moves a compact record to a hash of its own when a settle, a cancel or a removal writes it', async () => {
    const ids = await add('q', 1, 2, 3, 4, 5, 6);
    const jobs = await reserve('q', 4);
    const [withResult, retried, dead, fast] = jobs;
    const results = await firstValueFrom(
      store.settle([
        completed(withResult!, 'done'),
        { ...base(retried!), kind: 'retrying', delayMs: 60_000, error },
        { ...base(dead!), kind: 'dead', reason: 'permanent failure: no', error },
        completed(fast!),
      ]),
    );
    expect(results.every((r) => r.applied)).toBe(true);
    expect(await placeOf('q', withResult!.id)).toBe('own');
    expect(await placeOf('q', retried!.id)).toBe('own');
    expect(await placeOf('q', dead!.id)).toBe('own');
    // Completed with no result on its first attempt: the settle writes no record.
    expect(await placeOf('q', fast!.id)).toBe('compact');
    expect(await store.getJob('q', withResult!.id)).toMatchObject({
      state: JobState.Completed,
      result: 'done',
      data: 1,
    });
    expect(await store.getJob('q', retried!.id)).toMatchObject({
      state: JobState.Scheduled,
      data: 2,
      errors: [expect.objectContaining({ message: 'no', attempt: 1 })],
    });
    expect(await store.getJob('q', dead!.id)).toMatchObject({ state: JobState.Dead, data: 3 });
    expect(await store.getJob('q', fast!.id)).toMatchObject({
      state: JobState.Completed,
      data: 4,
      attempt: 1,
    });

    // A waiting compact job cancelled, another removed.
    expect(await store.cancel('q', ids[4]!)).toBe('cancelled');
    expect(await placeOf('q', ids[4]!)).toBe('own');
    expect(await store.getJob('q', ids[4]!)).toMatchObject({ state: JobState.Cancelled, data: 5 });
    expect(await store.removeJob('q', ids[5]!)).toBe(true);
    expect(await placeOf('q', ids[5]!)).toBe('none');
    expect(await store.getJob('q', ids[5]!)).toBeUndefined();
    // Retried from the dead letters: its record stays its own.
    expect(await store.retryJobs('q', [dead!.id])).toBe(1);
    expect(await placeOf('q', dead!.id)).toBe('own');
    const [revived] = await reserve('q', 1);
    expect(revived).toMatchObject({ id: dead!.id, data: 3, attempt: 1 }); // a retry starts its attempts over
  });

  it("trims ranged runs of every length and start: each job's compact record goes, the newest stay", async () => {
    // Runs of consecutive automatic ids settled together (ranged runs), their ids made again from
    // their numbers by the trim: starting below 100 and crossing into three digits, starting in the
    // middle of a hundred and crossing the next ones, and ending on a hundred's last id.
    await store.setQueueConfig('ranged', { retention: { keep: 'count', count: 5 } });
    const ids = await add('ranged', ...Array.from({ length: 499 }, (_, i) => i));
    expect(ids[0]).toBe('1');
    for (const n of [130, 170, 99, 100]) {
      const jobs = await reserve('ranged', n);
      expect(jobs).toHaveLength(n);
      await firstValueFrom(store.settle(jobs.map((j) => completed(j))));
    }
    expect((await store.stats('ranged')).counts.completed).toBe(5);
    const left: string[] = [];
    for (const key of await bucketsOf('ranged')) left.push(...(await redis.admin.hkeys(key)));
    expect(left.map(Number).sort((a, b) => a - b)).toEqual([495, 496, 497, 498, 499]);
  });

  it('leaves no compact record behind: retention, none kept, removal, drain, purge and obliterate', async () => {
    // Retention of 2: the settle's trim deletes the compact records of the jobs it trims.
    await store.setQueueConfig('kept', { retention: { keep: 'count', count: 2 } });
    await add('kept', 1, 2, 3, 4, 5, 6);
    const jobs = await reserve('kept', 6);
    await firstValueFrom(store.settle(jobs.map((j) => completed(j))));
    expect((await store.stats('kept')).counts.completed).toBe(2);
    const left: string[] = [];
    for (const key of await bucketsOf('kept')) left.push(...(await redis.admin.hkeys(key)));
    expect(left.sort()).toEqual([jobs[4]!.id, jobs[5]!.id].sort());
    expect(await store.removeJob('kept', jobs[5]!.id)).toBe(true);
    expect(await compactCount('kept')).toBe(1);
    expect(await store.purge('kept', 'completed')).toBe(1);
    expect(await bucketsOf('kept')).toEqual([]);

    // Retention none: completions delete their records at once.
    await store.setQueueConfig('none', { retention: { keep: 'none' } });
    await add('none', 1, 2, 3);
    await firstValueFrom(store.settle((await reserve('none', 3)).map((j) => completed(j))));
    expect(await bucketsOf('none')).toEqual([]);

    // Drained while waiting.
    await add('drained', 1, 2, 3);
    expect(await store.drain('drained')).toBe(3);
    expect(await bucketsOf('drained')).toEqual([]);

    // Obliterated with waiting, running and finished compact jobs: the queue's keys are all gone.
    await add('gone', 1, 2, 3, 4);
    const two = await reserve('gone', 2);
    await firstValueFrom(store.settle([completed(two[0]!)]));
    const result = await store.obliterate('gone', { force: true });
    expect(result).toEqual({ jobs: 4, running: 1 });
    const keys = store.keys.queue('gone');
    // Only the settings hash is left, holding its version (as obliterate documents).
    expect(await redis.admin.keys(`*${keys.tag}*`)).toEqual([keys.settings]);
  });

  it('dead-letters a malformed compact record at reserve with its reason and still delivers the good jobs', async () => {
    const keys = store.keys.queue('q');
    const [good1] = await add('q', { ok: 1 });
    const now = Date.now();
    // Written around the store, under automatic ids far ahead of the queue's: JSON broken, a value
    // not of the compact shape, data holding a NUL byte (which the reserve cannot join: that call's
    // records are read again by themselves), a created-at that is no number.
    const [badJson, noShape, nul, badCreated] = ['900000001', '900000002', '900010300', '900000003'];
    await redis.admin.hset(bucketOf('q', badJson), badJson, `c\0${now}\0d\0{"to": oops`);
    await redis.admin.hset(bucketOf('q', noShape), noShape, 'garbage');
    await redis.admin.hset(bucketOf('q', nul), nul, `c\0${now}\0d\0"a\0b"`);
    await redis.admin.hset(bucketOf('q', badCreated), badCreated, 'c\0soon\0d\0{}');
    expect(bucketOf('q', nul)).not.toBe(bucketOf('q', badJson));
    await redis.admin.rpush(keys.readyPrefix + '0', badJson, noShape, nul);
    const [good2] = await add('q', { ok: 2 });

    const first = await firstValueFrom(store.reserve('q', 5, { leaseMs: 10_000 }));
    expect(first.jobs.map((j) => [j.id, j.data])).toEqual([
      [good1, { ok: 1 }],
      [good2, { ok: 2 }],
    ]);
    expect(first.rejected).toEqual([
      { id: badJson, reason: expect.stringMatching(/not JSON/) as string },
      { id: noShape, reason: expect.stringMatching(/no created-at/) as string },
      { id: nul, reason: expect.stringMatching(/not JSON/) as string },
    ]);
    // In a call with no record read again: answered as the reserve found it, refused by the client.
    await redis.admin.rpush(keys.readyPrefix + '0', badCreated);
    const [good3] = await add('q', { ok: 3 });
    const second = await firstValueFrom(store.reserve('q', 5, { leaseMs: 10_000 }));
    expect(second.jobs.map((j) => [j.id, j.data])).toEqual([[good3, { ok: 3 }]]);
    expect(second.rejected).toEqual([
      { id: badCreated, reason: expect.stringMatching(/field c is not a number/) as string },
    ]);
    expect((await store.listJobs('q', JobState.Dead)).map((j) => j.id).sort()).toEqual([
      badJson,
      noShape,
      badCreated,
      nul,
    ]);
    // Dead-lettered with the value as it was found, in a hash of its own.
    expect(await placeOf('q', noShape)).toBe('own');
    expect(await redis.admin.hgetall(store.keys.job('q', noShape))).toMatchObject({ d: 'garbage', s: 'd' });
    expect(await store.getJob('q', badJson)).toMatchObject({ state: JobState.Dead, data: '{"to": oops' });
    for (const id of [badJson, noShape, nul, badCreated]) expect(await placeOf('q', id)).toBe('own');
  });

  it('keeps the records of 10,000 consecutive automatic ids in a bucket, a bulk add spread over the buckets of its ids', async () => {
    // The next automatic ids: 9,991 to 10,010, across the first bucket's end.
    await redis.admin.hset(store.keys.queue('wide').counters, 'e', '0', 'id', '9990');
    const ids = (
      await firstValueFrom(store.enqueue(Array.from({ length: 20 }, (_, i) => ({ queue: 'wide', data: i }))))
    ).map((r) => r.id);
    expect(ids[0]).toBe('9991');
    const keys = store.keys.queue('wide');
    expect((await bucketsOf('wide')).sort()).toEqual([keys.compactPrefix, keys.compactPrefix + '1']);
    expect(await redis.admin.hlen(keys.compactPrefix)).toBe(9);
    expect(await redis.admin.hlen(keys.compactPrefix + '1')).toBe(11);
    for (const id of ids) expect(await placeOf('wide', id)).toBe('compact');
    // A reserve across the two buckets reads each one's records; a trim deletes from both.
    const jobs = await reserve('wide', 20);
    expect(jobs.map((j) => j.data)).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await store.setQueueConfig('wide', { retention: { keep: 'none' } });
    await firstValueFrom(store.settle(jobs.map((j) => completed(j))));
    expect(await bucketsOf('wide')).toEqual([]);
  });
});
