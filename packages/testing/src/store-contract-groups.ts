import { firstValueFrom, take, timeout } from 'rxjs';
import {
  MAX_GROUP_LENGTH,
  MAX_GROUP_WEIGHT,
  type NewJob,
  type ReserveOptions,
  type ReservedJob,
  type Settlement,
  type Store,
} from '@sluice/core';
import { subscribed } from './subscribed';

/** What the group tests need from the store contract's fixture. */
export interface GroupContractContext {
  store(): Store;
  /** Moves the store's clock forward (a real clock sleeps). */
  advance(ms: number): Promise<void>;
}

/**
 * The store contract's tests of groups (`JobOptions.group`, `ReserveOptions.groups`): fair turns,
 * per-group concurrency counted with the leases, order with concurrency 1 (retries included), and
 * the administrative paths (cancel, remove, drain, stats, list) keeping a group's state right. Run
 * by `defineStoreContract` for every store.
 */
export function defineGroupContract(ctx: GroupContractContext): void {
  const add = (jobs: NewJob[]) => firstValueFrom(ctx.store().enqueue(jobs));
  const reserve = (queue: string, n: number, extra: Partial<ReserveOptions> = {}) =>
    firstValueFrom(ctx.store().reserve(queue, n, { leaseMs: 10_000, ...extra }));
  const settleAll = (settlements: Settlement[]) => firstValueFrom(ctx.store().settle(settlements));
  const base = (job: ReservedJob) => ({ queue: job.queue, id: job.id, token: job.lease.token });
  const complete = (job: ReservedJob) =>
    settleAll([{ ...base(job), kind: 'completed', result: null, durationMs: 1 }]);
  const data = (job: ReservedJob | undefined) => job?.data;
  const one = { groups: { concurrency: 1 } } as const;
  /** Reserves one job at a time and completes it, until none comes; the payloads in start order. */
  const runOneByOne = async (queue: string, extra: Partial<ReserveOptions> = {}): Promise<unknown[]> => {
    const order: unknown[] = [];
    for (let i = 0; i < 1000; i++) {
      const [job] = (await reserve(queue, 1, extra)).jobs;
      if (!job) break;
      order.push(job.data);
      await complete(job);
    }
    return order;
  };

  it("keeps a job's group, hands it to the worker and lists it; jobs without one have none", async () => {
    const [grouped, plain] = await add([
      { queue: 'q', data: 1, group: 'customer-42' },
      { queue: 'q', data: 2 },
    ]);
    expect((await ctx.store().getJob('q', grouped!.id))?.group).toBe('customer-42');
    expect(await ctx.store().getJob('q', plain!.id)).not.toHaveProperty('group');
    const { jobs } = await reserve('q', 2);
    expect(jobs.find((j) => j.id === grouped!.id)?.group).toBe('customer-42');
    expect(jobs.find((j) => j.id === plain!.id)).not.toHaveProperty('group');
  });

  it('rejects an empty, too long or non-string group with a clear error, storing none of the add', async () => {
    for (const bad of ['', 'g'.repeat(MAX_GROUP_LENGTH + 1), 42, null]) {
      await expect(
        add([
          { queue: 'q', data: 'fine', group: 'ok' },
          { queue: 'q', data: 'bad', group: bad as never },
        ]),
      ).rejects.toMatchObject({
        code: 'ERR_SLUICE_INVALID_ARGUMENT',
        message: expect.stringMatching(/^group must be a non-empty string of at most 256 characters/),
      });
    }
    expect((await ctx.store().stats('q')).totals.enqueued).toBe(0);
    const [longest] = await add([{ queue: 'q', data: 1, group: 'g'.repeat(MAX_GROUP_LENGTH) }]);
    expect((await ctx.store().getJob('q', longest!.id))?.group).toHaveLength(MAX_GROUP_LENGTH);
  });

  it("serves groups round-robin: a big group's backlog delays another group's job by at most one round", async () => {
    await add(Array.from({ length: 60 }, (_, i) => ({ queue: 'q', data: `big-${i}`, group: 'big' })));
    await add(['a', 'b', 'c'].map((g) => ({ queue: 'q', data: `small-${g}`, group: g })));
    // Four groups have ready jobs: each small job starts within the first round of four.
    const { jobs } = await reserve('q', 10);
    const order = jobs.map(data);
    for (const g of ['a', 'b', 'c']) {
      expect(order.indexOf(`small-${g}`)).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(`small-${g}`)).toBeLessThan(4);
    }
    // The big group keeps its own order.
    const big = order.filter((d) => String(d).startsWith('big-'));
    expect(big).toEqual(big.map((_, i) => `big-${i}`));
    expect(jobs).toHaveLength(10);
  });

  it('serves a group added behind a backlog within one round when reserving one job at a time', async () => {
    await add(Array.from({ length: 30 }, (_, i) => ({ queue: 'q', data: `big-${i}`, group: 'big' })));
    const [first] = (await reserve('q', 1)).jobs;
    expect(first?.data).toBe('big-0');
    await add([{ queue: 'q', data: 'late', group: 'late' }]);
    const order = [first!.data, ...(await runOneByOne('q'))];
    // Added after big-0 started: at most one more job of the big group goes first.
    expect(order.indexOf('late')).toBeGreaterThan(0);
    expect(order.indexOf('late')).toBeLessThanOrEqual(2);
    expect(order).toHaveLength(31);
  });

  it('mixes ungrouped jobs and groups: ungrouped jobs keep their order, each taking a turn of its own', async () => {
    await add([
      { queue: 'q', data: 'u1' },
      { queue: 'q', data: 'g1', group: 'g' },
      { queue: 'q', data: 'g2', group: 'g' },
      { queue: 'q', data: 'u2' },
      { queue: 'q', data: 'u3' },
    ]);
    const order = await runOneByOne('q');
    expect(order.filter((d) => String(d).startsWith('u'))).toEqual(['u1', 'u2', 'u3']);
    expect(order.filter((d) => String(d).startsWith('g'))).toEqual(['g1', 'g2']);
    expect(order).toHaveLength(5);
    // Without groups, priorities and FIFO are as before.
    await add([
      { queue: 'plain', data: 1, priority: 5 },
      { queue: 'plain', data: 2 },
      { queue: 'plain', data: 3, priority: 1 },
    ]);
    expect((await reserve('plain', 10)).jobs.map(data)).toEqual([2, 3, 1]);
  });

  it('holds at most groups.concurrency jobs of a group at once; settling gives the slot back', async () => {
    await add([
      ...Array.from({ length: 5 }, (_, i) => ({ queue: 'q', data: `x${i}`, group: 'x' })),
      ...Array.from({ length: 5 }, (_, i) => ({ queue: 'q', data: `y${i}`, group: 'y' })),
      { queue: 'q', data: 'free' },
    ]);
    const two = { groups: { concurrency: 2 } };
    const first = await reserve('q', 20, two);
    const groupsOf = (jobs: readonly ReservedJob[]) => jobs.map((j) => j.group ?? '-').sort();
    expect(groupsOf(first.jobs)).toEqual(['-', 'x', 'x', 'y', 'y']);
    // Another worker (another reserve) finds the groups full.
    expect((await reserve('q', 20, two)).jobs).toEqual([]);
    await complete(first.jobs.find((j) => j.group === 'x')!);
    const next = await reserve('q', 20, two);
    expect(next.jobs.map(data)).toEqual(['x2']);
    expect((await ctx.store().stats('q')).counts).toMatchObject({ ready: 5, running: 5 });
  });

  it("wakes sleeping workers when a settle frees a full group's slot and its next job takes a turn", async () => {
    await add([1, 2].map((n) => ({ queue: 'q', data: n, group: 'w' })));
    const [first] = (await reserve('q', 5, one)).jobs;
    expect(first?.data).toBe(1);
    // Nothing more to reserve: a worker now sleeps until it is woken (or polls again).
    expect((await reserve('q', 5, one)).jobs).toEqual([]);
    const woke = firstValueFrom(ctx.store().wakeups('q').pipe(take(1), timeout(2000)));
    await subscribed(ctx.store(), 'q');
    await complete(first!);
    await expect(woke).resolves.toBeUndefined();
    expect((await reserve('q', 5, one)).jobs.map(data)).toEqual([2]);
  });

  it('serves a group of weight w w turns in a row each round, one reserve at a time or many', async () => {
    const addAll = () =>
      add(
        ['a', 'b', 'c'].flatMap((g) =>
          Array.from({ length: 6 }, (_, i) => ({ queue: 'q', data: `${g}${i + 1}`, group: g })),
        ),
      );
    await ctx.store().setGroupWeight!('q', 'a', 3);
    expect(await ctx.store().getGroupWeight!('q', 'a')).toBe(3);
    expect(await ctx.store().getGroupWeight!('q', 'b')).toBeNull();
    await addAll();
    expect((await ctx.store().listGroups!('q')).map((g) => [g.group, g.weight ?? 1])).toEqual([
      ['a', 3],
      ['b', 1],
      ['c', 1],
    ]);
    expect(await runOneByOne('q')).toEqual(
      'a1 a2 a3 b1 c1 a4 a5 a6 b2 c2 b3 c3 b4 c4 b5 c5 b6 c6'.split(' '),
    );
    // The same order when one reserve takes many.
    await addAll();
    const many = (await reserve('q', 10)).jobs.map(data);
    expect(many).toEqual('a1 a2 a3 b1 c1 a4 a5 a6 b2 c2'.split(' '));
    // Back to weight 1: a's new jobs take plain turns (with weight 3: b3 c3 a7 a8 a9 b4).
    await ctx.store().setGroupWeight!('q', 'a', null);
    expect(await ctx.store().getGroupWeight!('q', 'a')).toBeNull();
    await add(['a7', 'a8', 'a9'].map((d) => ({ queue: 'q', data: d, group: 'a' })));
    expect((await reserve('q', 6)).jobs.map(data)).toEqual('b3 c3 a7 b4 c4 a8'.split(' '));
  });

  it('refuses a weight that is not an integer from 1 to MAX_GROUP_WEIGHT, or a bad group name', async () => {
    for (const bad of [0, -1, 2.5, MAX_GROUP_WEIGHT + 1, Number.NaN]) {
      await expect(ctx.store().setGroupWeight!('q', 'a', bad)).rejects.toMatchObject({
        code: 'ERR_SLUICE_INVALID_ARGUMENT',
        message: expect.stringMatching(/weight must be an integer from 1 to 1000/),
      });
    }
    await expect(ctx.store().setGroupWeight!('q', '', 2)).rejects.toMatchObject({
      code: 'ERR_SLUICE_INVALID_ARGUMENT',
    });
    expect(await ctx.store().getGroupWeight!('q', 'a')).toBeNull();
  });

  it("gives a crashed worker's group slots back when its expired leases are recovered", async () => {
    await add(['a', 'b'].map((d) => ({ queue: 'q', data: d, group: 'g', maxAttempts: 3 })));
    const [crashed] = (await reserve('q', 5, { ...one, leaseMs: 100 })).jobs;
    expect(crashed?.data).toBe('a');
    expect((await reserve('q', 5, one)).jobs).toEqual([]);
    await ctx.advance(150);
    expect((await firstValueFrom(ctx.store().recoverExpired('q'))).recovered).toEqual([crashed!.id]);
    // The recovered job keeps its place at the head of its group.
    const [again] = (await reserve('q', 5, one)).jobs;
    expect(again).toMatchObject({ id: crashed!.id, attempt: 2 });
    await complete(again!);
    expect((await reserve('q', 5, one)).jobs.map(data)).toEqual(['b']);
  });

  it('with concurrency 1 starts a group in add order, a retried job keeping its place at the head', async () => {
    await add(['a', 'b', 'c'].map((d) => ({ queue: 'q', data: d, group: 'g' })));
    await add([{ queue: 'q', data: 'other', group: 'h' }]);
    const first = await reserve('q', 5, one);
    expect(first.jobs.map(data).sort()).toEqual(['a', 'other']);
    const a = first.jobs.find((j) => j.data === 'a')!;
    await settleAll([{ ...base(a), kind: 'retrying', delayMs: 100, error: { name: 'E', message: 'x' } }]);
    // The retry keeps the group's slot through its backoff: b must not overtake it.
    expect((await reserve('q', 5, one)).jobs).toEqual([]);
    await ctx.advance(150);
    const [retried] = (await reserve('q', 5, one)).jobs;
    expect(retried).toMatchObject({ id: a.id, attempt: 2 });
    // A retry without a delay goes straight back to the head.
    await settleAll([
      { ...base(retried!), kind: 'retrying', delayMs: 0, error: { name: 'E', message: 'y' } },
    ]);
    expect((await reserve('q', 5, one)).jobs.map(data)).toEqual(['a']);
    expect((await ctx.store().stats('q')).counts).toMatchObject({ ready: 2, running: 2 });
  });

  it('runs jobs of a group one at a time in add order across many reserves and priorities', async () => {
    // Jobs added while the group is busy wait in the group: priorities order them there.
    await add([{ queue: 'q', data: 'first', group: 'g' }]);
    const [first] = (await reserve('q', 1, one)).jobs;
    await add([
      { queue: 'q', data: 'p5-a', group: 'g', priority: 5 },
      { queue: 'q', data: 'p1', group: 'g', priority: 1 },
      { queue: 'q', data: 'p5-b', group: 'g', priority: 5 },
    ]);
    expect((await reserve('q', 5, one)).jobs).toEqual([]);
    await complete(first!);
    expect(await runOneByOne('q', one)).toEqual(['p1', 'p5-a', 'p5-b']);
  });

  it('cancel and remove take waiting jobs out of their group and give turns and slots back', async () => {
    const ids = await add(['a', 'b', 'c', 'd'].map((d) => ({ queue: 'q', data: d, group: 'g' })));
    const [a, b, c, d] = ids.map((r) => r.id);
    // a has the group's turn: cancelling it passes the turn on.
    expect(await ctx.store().cancel('q', a!)).toBe('cancelled');
    expect(await ctx.store().removeJob('q', c!)).toBe(true);
    const [running] = (await reserve('q', 5, one)).jobs;
    expect(running?.id).toBe(b);
    // A retry keeping its slot through its backoff gives it back when cancelled.
    await settleAll([
      { ...base(running!), kind: 'retrying', delayMs: 60_000, error: { name: 'E', message: 'x' } },
    ]);
    expect((await reserve('q', 5, one)).jobs).toEqual([]);
    expect(await ctx.store().cancel('q', b!)).toBe('cancelled');
    expect((await reserve('q', 5, one)).jobs.map((j) => j.id)).toEqual([d]);
    const stats = await ctx.store().stats('q');
    expect(stats.counts).toMatchObject({ ready: 0, scheduled: 0, running: 1 });
  });

  it('counts and lists jobs waiting in their groups as ready, and drains them', async () => {
    await add([
      ...['a', 'b', 'c'].map((d) => ({ queue: 'q', data: d, group: 'g' })),
      ...['x', 'y'].map((d) => ({ queue: 'q', data: d, group: 'h' })),
      { queue: 'q', data: 'u' },
    ]);
    expect((await ctx.store().stats('q')).counts.ready).toBe(6);
    const listed = await ctx.store().listJobs('q', 'ready');
    expect(listed.map((j) => j.data).sort()).toEqual(['a', 'b', 'c', 'u', 'x', 'y']);
    const page = await ctx.store().listJobs('q', 'ready', { offset: 2, limit: 3 });
    expect(page.map((j) => j.data)).toEqual(listed.slice(2, 5).map((j) => j.data));
    expect((await ctx.store().listJobs('q', 'ready', { name: 'q', limit: 10 })).length).toBe(6);
    expect(await ctx.store().drain!('q')).toBe(6);
    expect((await ctx.store().stats('q')).counts.ready).toBe(0);
    expect((await reserve('q', 10)).jobs).toEqual([]);
    // The groups work again afterwards.
    await add([{ queue: 'q', data: 'again', group: 'g' }]);
    expect((await reserve('q', 10, one)).jobs.map(data)).toEqual(['again']);
  });

  it('serves dead jobs retried by hand and delayed jobs through their group', async () => {
    const [late] = await add([{ queue: 'q', data: 'late', group: 'g', delayMs: 60_000 }]);
    await add([{ queue: 'q', data: 'now', group: 'g', maxAttempts: 1 }]);
    const [now] = (await reserve('q', 5, one)).jobs;
    await settleAll([{ ...base(now!), kind: 'dead', reason: 'bad', error: { name: 'E', message: 'x' } }]);
    expect(await ctx.store().promoteJob('q', late!.id)).toBe(true);
    expect(await ctx.store().retryJobs('q', 'all-dead')).toBe(1);
    expect(await runOneByOne('q', one)).toEqual(['late', 'now']);
  });

  it('pauses one group: none of its jobs is leased until it is resumed, the other groups go on', async () => {
    const store = ctx.store();
    await add([
      ...['a1', 'a2'].map((d) => ({ queue: 'q', data: d, group: 'a' })),
      ...['b1', 'b2'].map((d) => ({ queue: 'q', data: d, group: 'b' })),
    ]);
    const [a1] = (await reserve('q', 1)).jobs;
    expect(a1?.data).toBe('a1');
    await store.pauseGroup!('q', 'a');
    await store.pauseGroup!('q', 'a'); // idempotent
    const whilePaused = await reserve('q', 10);
    expect(whilePaused.jobs.map(data)).toEqual(['b1', 'b2']);
    // The running job of the paused group settles as usual.
    await complete(a1!);
    expect((await reserve('q', 10)).jobs).toEqual([]);
    expect(await store.listGroups!('q')).toEqual([
      { group: 'a', ready: 1, active: 0, paused: true },
      { group: 'b', ready: 0, active: 2, paused: false },
    ]);
    await store.resumeGroup!('q', 'a');
    expect((await reserve('q', 10)).jobs.map(data)).toEqual(['a2']);
    await expect(store.pauseGroup!('q', '')).rejects.toMatchObject({ code: 'ERR_SLUICE_INVALID_ARGUMENT' });
  });

  it('lists groups that hold anything or are paused, by name, a page at a time', async () => {
    const store = ctx.store();
    expect(await store.listGroups!('q')).toEqual([]);
    await add([
      ...['c', 'a', 'b', 'a', 'a'].map((g, i) => ({ queue: 'q', data: i, group: g })),
      { queue: 'q', data: 'plain' },
    ]);
    const { jobs } = await reserve('q', 2, one);
    expect(jobs.map((j) => j.group).sort()).toEqual(['a', 'c']);
    await store.pauseGroup!('q', 'idle');
    expect(await store.listGroups!('q')).toEqual([
      { group: 'a', ready: 2, active: 1, paused: false },
      { group: 'b', ready: 1, active: 0, paused: false },
      { group: 'c', ready: 0, active: 1, paused: false },
      { group: 'idle', ready: 0, active: 0, paused: true },
    ]);
    expect((await store.listGroups!('q', { offset: 1, limit: 2 })).map((g) => g.group)).toEqual(['b', 'c']);
    // A group that holds nothing any more and is not paused is gone.
    await complete(jobs.find((j) => j.group === 'c')!);
    await store.resumeGroup!('q', 'idle');
    expect((await store.listGroups!('q')).map((g) => g.group)).toEqual(['a', 'b']);
  });

  it("puts a job its rate limit cannot place back at the front of its group, giving the group's slot back", async () => {
    await add(['a', 'b', 'c'].map((d) => ({ queue: 'q', data: d, group: 'g', cost: 2 })));
    const limit = { key: 'group-costs', allowed: 3, periodMs: 200 };
    const two = { groups: { concurrency: 2 }, limit };
    // a and b are popped (two slots); the limit has room for a's 2 units only.
    const first = await reserve('q', 5, two);
    expect(first.jobs.map(data)).toEqual(['a']);
    expect(first.retryAfterMs).toBeGreaterThan(0);
    expect(await ctx.store().listGroups!('q')).toEqual([{ group: 'g', ready: 2, active: 1, paused: false }]);
    await ctx.advance(250);
    await complete(first.jobs[0]!);
    expect((await reserve('q', 5, two)).jobs.map(data)).toEqual(['b']);
  });
}
