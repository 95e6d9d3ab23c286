import { firstValueFrom } from 'rxjs';
import type { NewJob, ReserveOptions, ReservedJob } from '@sluice/core';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix } from '@sluice/testing';
import { useSpawnedRedisWithAdmin } from './helpers';

/**
 * Groups at scale on a private Redis (so `INFO` figures are this file's alone), with bounds that do
 * not depend on the machine's speed: how many jobs of a big group start before the jobs of groups
 * added after it (counted in reserves, not timed), how many Redis commands a processed job costs with
 * many groups against few, and what a group leaves behind once it drains. The full-size figures
 * (a million-job group, 100,000 groups, Redis CPU) are measured by `npm run bench -- --only groups`.
 */
describe('groups at scale (real Redis)', () => {
  const redis = useSpawnedRedisWithAdmin();
  let store: RedisStore;
  let prefix: string;

  beforeEach(async () => {
    prefix = uniquePrefix('groups-scale');
    store = await RedisStore.connect({ url: redis.url, prefix });
  });
  afterEach(async () => {
    await store.close();
    await deleteKeysWithPrefix(redis.admin, prefix);
  });

  const reserveOptions: ReserveOptions = { leaseMs: 60_000, groups: { concurrency: 1 } };
  const add = async (jobs: readonly NewJob[]): Promise<void> => {
    for (let i = 0; i < jobs.length; i += 5000) await firstValueFrom(store.enqueue(jobs.slice(i, i + 5000)));
  };
  const reserve = async (queue: string, n: number): Promise<readonly ReservedJob[]> =>
    (await firstValueFrom(store.reserve(queue, n, reserveOptions))).jobs;
  const complete = async (jobs: readonly ReservedJob[]): Promise<void> => {
    if (jobs.length === 0) return;
    const results = await firstValueFrom(
      store.settle(
        jobs.map((j) => ({
          queue: j.queue,
          id: j.id,
          token: j.lease.token,
          kind: 'completed' as const,
          result: null,
          durationMs: 1,
        })),
      ),
    );
    expect(results.every((r) => r.applied)).toBe(true);
  };

  it('a group with 100,000 ready jobs delays 1,000 groups added after it by at most one of its jobs a round', async () => {
    const BIG = 100_000;
    const SMALL_GROUPS = 1000;
    const PER_GROUP = 10;
    const BATCH = 100;
    await add(Array.from({ length: BIG }, (_, i) => ({ queue: 'hooks', data: i, group: 'big' })));
    // The big group is being worked on: a few reserves of it run and complete.
    const started: ReservedJob[] = [];
    for (let i = 0; i < 3; i++) {
      const jobs = await reserve('hooks', BATCH);
      started.push(...jobs);
      await complete(jobs);
    }
    // With concurrency 1 and no other group, one job of the big group per reserve.
    expect(started.map((j) => j.data)).toEqual([0, 1, 2]);

    // Then 1,000 customers add 10 jobs each, customer after customer.
    const small: NewJob[] = [];
    for (let g = 0; g < SMALL_GROUPS; g++) {
      for (let k = 0; k < PER_GROUP; k++) small.push({ queue: 'hooks', data: `c${g}-${k}`, group: `c${g}` });
    }
    await add(small);

    // Reserve and complete in calls of 100 until every small job has started; count the big group's
    // starts before each small job.
    let bigSince = 0;
    let smallStarted = 0;
    let reserves = 0;
    const bigBefore = new Map<string, number>();
    const orderOf = new Map<string, string[]>();
    while (smallStarted < SMALL_GROUPS * PER_GROUP) {
      const jobs = await reserve('hooks', BATCH);
      reserves++;
      expect(jobs.length).toBeGreaterThan(0);
      for (const job of jobs) {
        if (job.group === 'big') {
          bigSince++;
          continue;
        }
        smallStarted++;
        bigBefore.set(String(job.data), bigSince);
        const list = orderOf.get(job.group!) ?? [];
        list.push(String(job.data));
        orderOf.set(job.group!, list);
      }
      await complete(jobs);
    }
    // Each round gives every group with a ready job one turn: the k-th job of a customer (from 1)
    // starts after at most k jobs of the big group (one a round), plus the turn the big group had out
    // when the customers' jobs arrived. Served in backlog order, it would wait for 99,997 of them.
    for (let g = 0; g < SMALL_GROUPS; g++) {
      for (let k = 0; k < PER_GROUP; k++) {
        expect(bigBefore.get(`c${g}-${k}`)).toBeLessThanOrEqual(k + 2);
      }
      // With concurrency 1 each customer's jobs start in the order they were added.
      expect(orderOf.get(`c${g}`)).toEqual(Array.from({ length: PER_GROUP }, (_, k) => `c${g}-${k}`));
    }
    expect(bigSince).toBeLessThanOrEqual(PER_GROUP + 2);
    // 10,000 small jobs and at most 12 big ones in calls of 100: the reserves stayed full.
    expect(reserves).toBeLessThanOrEqual(Math.ceil((SMALL_GROUPS * PER_GROUP + PER_GROUP + 2) / BATCH));
    // The big group goes on, in its own order.
    const rest = await reserve('hooks', BATCH);
    expect(rest.map((j) => j.data)).toEqual([3 + bigSince]);
  }, 120_000);

  /** Every command Redis ran (including those inside scripts), from `INFO commandstats`. */
  const commandCalls = async (): Promise<number> => {
    const info = await redis.admin.info('commandstats');
    let calls = 0;
    for (const m of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
      if (!['info', 'config', 'scan', 'unlink', 'del', 'ping', 'client', 'select'].includes(m[1]!)) {
        calls += Number(m[2]);
      }
    }
    return calls;
  };

  /** Adds `jobs` jobs spread over `groups` groups, then reserves and completes all; commands per job. */
  const commandsPerJob = async (queue: string, groups: number, jobs: number): Promise<number> => {
    await add(Array.from({ length: jobs }, (_, i) => ({ queue, data: i, group: `t${i % groups}` })));
    const before = await commandCalls();
    let done = 0;
    while (done < jobs) {
      const reserved = await reserve(queue, 100);
      expect(reserved.length).toBeGreaterThan(0);
      await complete(reserved);
      done += reserved.length;
    }
    const after = await commandCalls();
    expect(done).toBe(jobs);
    return (after - before) / jobs;
  };

  it('costs about the same Redis commands per processed job with 5,000 groups as with 10', async () => {
    const JOBS = 5000;
    // Warm-up: the queue's own keys and the scripts exist before either measurement.
    await commandsPerJob('warm', 10, 200);
    const few = await commandsPerJob('few', 10, JOBS);
    const many = await commandsPerJob('many', JOBS, JOBS);
    console.log(
      `Redis commands per processed job (reserve and complete in calls of 100, groups.concurrency 1): ` +
        `${few.toFixed(1)} with 10 groups, ${many.toFixed(1)} with ${JOBS.toLocaleString('en')} groups`,
    );
    // Scripts run a fixed number of commands per job, whatever the number of groups: a group's turn
    // is one list entry, picking it one pop. (Commands inside scripts count in commandstats.)
    expect(few).toBeGreaterThan(1);
    expect(many).toBeLessThanOrEqual(few * 1.5);
  }, 120_000);

  it('leaves no key behind for a group that drained: an idle group costs no memory', async () => {
    const GROUPS = 2000;
    const groupKeys = async (): Promise<string[]> => {
      const found: string[] = [];
      let cursor = '0';
      do {
        const [next, keys] = await redis.admin.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
        cursor = next;
        found.push(...keys.filter((k) => /:g[swi]:?/.test(k.slice(prefix.length))));
      } while (cursor !== '0');
      return found;
    };
    await add(Array.from({ length: GROUPS }, (_, i) => ({ queue: 'q', data: i, group: `idle-${i}` })));
    // While they hold a waiting job, each group has its state and waiting keys.
    expect((await groupKeys()).length).toBeGreaterThanOrEqual(GROUPS);
    expect((await store.listGroups('q', { offset: 0, limit: 10 })).length).toBe(10);
    let done = 0;
    while (done < GROUPS) {
      const jobs = await reserve('q', 100);
      expect(jobs.length).toBeGreaterThan(0);
      await complete(jobs);
      done += jobs.length;
    }
    expect(await groupKeys()).toEqual([]);
    expect(await store.listGroups('q', { offset: 0, limit: 10 })).toEqual([]);
  }, 60_000);
});
