import { firstValueFrom } from 'rxjs';
import {
  maxInAnyWindow,
  type NewJob,
  type ReserveOptions,
  type ReserveResult,
  type ReservedJob,
  type Settlement,
} from '@sluice/core';
import type { GroupContractContext } from './store-contract-groups';

/**
 * The store contract's tests of rate limits per group (`GroupRules.rateLimit`, `setGroupLimit`):
 * each group's log holds at most `allowed` units in any window by the store's record, groups are
 * limited independently and together with the pipeline's limit, a full group is held back without
 * blocking the others and keeps its place, numbers set for one group apply at the next reserve, and
 * moves and hand-backs act on the group. Run by `defineStoreContract` for every store.
 */
export function defineGroupLimitContract(ctx: GroupContractContext): void {
  const add = (jobs: NewJob[]) => firstValueFrom(ctx.store().enqueue(jobs));
  const reserve = (queue: string, n: number, extra: Partial<ReserveOptions> = {}) =>
    firstValueFrom(ctx.store().reserve(queue, n, { leaseMs: 10_000, ...extra }));
  const settleAll = (settlements: Settlement[]) => firstValueFrom(ctx.store().settle(settlements));
  const base = (job: ReservedJob) => ({ queue: job.queue, id: job.id, token: job.lease.token });
  const data = (job: ReservedJob | undefined) => job?.data;
  const PERIOD = 200;
  const limited = (allowed: number, extra: Partial<ReserveOptions> = {}): Partial<ReserveOptions> => ({
    groups: { rateLimit: { allowed, periodMs: PERIOD } },
    ...extra,
  });
  /** Each job of a reserve with the store time its units were recorded at. */
  const slotted = (result: ReserveResult): { job: ReservedJob; at: number }[] => {
    const out: { job: ReservedJob; at: number }[] = [];
    let i = 0;
    for (const slot of result.slots ?? []) {
      for (let k = 0; k < slot.jobs; k++) {
        const job = result.jobs[i++];
        if (job) out.push({ job, at: slot.at });
      }
    }
    expect(i).toBe(result.jobs.length); // every job has a slot
    return out;
  };

  it("records each group's jobs in its own log: never more than allowed in a window, groups apart", async () => {
    const groups = ['a', 'b', 'c'];
    await add(
      groups.flatMap((g) =>
        Array.from({ length: 7 }, (_, i) => ({ queue: 'q', data: `${g}${i}`, group: g })),
      ),
    );
    const times = new Map<string, number[]>(groups.map((g) => [g, []]));
    const started: unknown[] = [];
    for (let round = 0; round < 3; round++) {
      const result = await reserve('q', 100, limited(2));
      const placed = slotted(result);
      // Two of each group per window: the limit of one group does not take from another.
      expect(placed).toHaveLength(6);
      for (const { job, at } of placed) {
        times.get(job.group!)!.push(at);
        started.push(job.data);
        expect(at).toBeGreaterThanOrEqual(job.lease.startedAt);
      }
      // Nothing more this window: the groups are held back, not popped again and again.
      const again = await reserve('q', 100, limited(2));
      expect(again.jobs).toHaveLength(0);
      expect(again.nextCheckInMs).toBeGreaterThan(0);
      expect(again.nextCheckInMs).toBeLessThanOrEqual(PERIOD + 1);
      await ctx.advance(PERIOD + 30);
    }
    for (const g of groups) {
      expect(maxInAnyWindow(times.get(g)!, PERIOD)).toBeLessThanOrEqual(2);
      // In add order within the group.
      expect(started.filter((d) => String(d).startsWith(g))).toEqual(
        [0, 1, 2, 3, 4, 5].map((i) => `${g}${i}`),
      );
    }
  });

  it('holds a full group back without blocking the others; its job keeps its place at the head', async () => {
    await add(Array.from({ length: 4 }, (_, i) => ({ queue: 'q', data: `big-${i}`, group: 'big' })));
    expect((await reserve('q', 10, limited(1))).jobs.map(data)).toEqual(['big-0']);
    await add([
      { queue: 'q', data: 'small-0', group: 'small' },
      { queue: 'q', data: 'plain' },
    ]);
    // big is full for this window: the other group and the job of no group go.
    const next = await reserve('q', 10, limited(1));
    expect(next.jobs.map(data).sort()).toEqual(['plain', 'small-0']);
    expect(next.retryAfterMs).toBeUndefined();
    const groups = await ctx.store().listGroups!('q');
    // big-0 runs; big-1, held back, gave its slot back and waits at the head with the rest.
    // Listed as limited until its log has room: within a window of its first job's start.
    const startedAt = next.jobs[0]!.lease.startedAt;
    expect(groups.find((g) => g.group === 'big')).toEqual({
      group: 'big',
      ready: 3,
      active: 1,
      paused: false,
      limitedUntil: expect.any(Number),
    });
    const until = groups.find((g) => g.group === 'big')!.limitedUntil!;
    expect(until).toBeGreaterThan(startedAt);
    expect(until).toBeLessThanOrEqual(startedAt + 2 * PERIOD);
    expect(groups.find((g) => g.group === 'small')).not.toHaveProperty('limitedUntil');
    await ctx.advance(PERIOD + 30);
    expect((await reserve('q', 10, limited(1))).jobs.map(data)).toEqual(['big-1']);
    // big-1 took the new window's one unit: big-2 is held back to the window after.
    const later = (await ctx.store().listGroups!('q')).find((g) => g.group === 'big')!.limitedUntil;
    expect(later).toBeGreaterThan(until);
  });

  it("checks a group's log together with the pipeline's limit, at one slot", async () => {
    await add(
      ['a', 'b', 'c'].flatMap((g) => [1, 2, 3].map((i) => ({ queue: 'q', data: `${g}${i}`, group: g }))),
    );
    const limit = { key: 'shared-and-groups', allowed: 4, periodMs: PERIOD };
    const result = await reserve('q', 100, limited(2, { limit }));
    expect(result.jobs).toHaveLength(4); // the pipeline's limit is the tighter one here
    expect(result.retryAfterMs).toBeGreaterThan(0);
    const perGroup = new Map<string, number>();
    for (const { job } of slotted(result)) perGroup.set(job.group!, (perGroup.get(job.group!) ?? 0) + 1);
    expect(Math.max(...perGroup.values())).toBeLessThanOrEqual(2);
    expect(await ctx.store().rateLimitUsage!('q', limit.key, PERIOD)).toBe(4);
  });

  it('applies numbers set for one group from the next reserve, and back to the pipeline numbers on null', async () => {
    const store = ctx.store();
    await add(
      ['vip', 'std'].flatMap((g) => Array.from({ length: 8 }, (_, i) => ({ queue: 'q', data: i, group: g }))),
    );
    await store.setGroupLimit!('q', 'vip', { allowed: 4, periodMs: PERIOD });
    expect(await store.getGroupLimit!('q', 'vip')).toEqual({ allowed: 4, periodMs: PERIOD });
    expect(await store.getGroupLimit!('q', 'std')).toBeNull();
    const count = (jobs: readonly ReservedJob[], g: string) => jobs.filter((j) => j.group === g).length;
    const first = await reserve('q', 100, limited(1));
    expect([count(first.jobs, 'vip'), count(first.jobs, 'std')]).toEqual([4, 1]);
    await store.setGroupLimit!('q', 'vip', null);
    expect(await store.getGroupLimit!('q', 'vip')).toBeNull();
    await ctx.advance(PERIOD + 30);
    const second = await reserve('q', 100, limited(1));
    expect([count(second.jobs, 'vip'), count(second.jobs, 'std')]).toEqual([1, 1]);
    await expect(store.setGroupLimit!('q', 'vip', { allowed: 0, periodMs: 10 })).rejects.toMatchObject({
      code: 'ERR_SLUICE_INVALID_ARGUMENT',
    });
    await expect(store.setGroupLimit!('q', '', { allowed: 1, periodMs: 10 })).rejects.toMatchObject({
      code: 'ERR_SLUICE_INVALID_ARGUMENT',
    });
  });

  it("gives a crashed worker's group slot back with its lease; the job goes first in its group's next window", async () => {
    await add(['a', 'b'].map((d) => ({ queue: 'q', data: d, group: 'g' })));
    const rules = { groups: { concurrency: 1, rateLimit: { allowed: 1, periodMs: PERIOD } } };
    const first = await reserve('q', 10, { ...rules, leaseMs: 100 });
    expect(first.jobs.map(data)).toEqual(['a']);
    await ctx.advance(PERIOD + 30);
    expect((await firstValueFrom(ctx.store().recoverExpired('q'))).recovered).toHaveLength(1);
    const again = await reserve('q', 10, rules);
    expect(again.jobs.map(data)).toEqual(['a']);
    expect(again.jobs[0]!.attempt).toBe(2);
  });

  it('puts a handed-back job at the head of its group (or priority) without spending an attempt', async () => {
    await add([
      ...['a', 'b'].map((d) => ({ queue: 'q', data: d, group: 'g' })),
      { queue: 'p', data: 'x' },
      { queue: 'p', data: 'y' },
    ]);
    const rules = { groups: { concurrency: 1 } };
    const [a] = (await reserve('q', 10, rules)).jobs;
    expect(data(a)).toBe('a');
    await settleAll([{ ...base(a!), kind: 'snoozed', delayMs: 0, front: true }]);
    const [again] = (await reserve('q', 10, rules)).jobs;
    expect([data(again), again?.attempt]).toEqual(['a', 1]);
    const [x] = (await reserve('p', 1)).jobs;
    await settleAll([{ ...base(x!), kind: 'snoozed', delayMs: 0, front: true }]);
    expect((await reserve('p', 1)).jobs.map(data)).toEqual(['x']);
  });

  it("gives a handed-back job's unused units back to its group's log, and it goes first again", async () => {
    await add(['a', 'b'].map((d) => ({ queue: 'q', data: d, group: 'g' })));
    const [placed] = slotted(await reserve('q', 10, limited(1)));
    expect(data(placed?.job)).toBe('a');
    // The group's window is full: nothing more now.
    expect((await reserve('q', 10, limited(1))).jobs).toHaveLength(0);
    await settleAll([
      {
        ...base(placed!.job),
        kind: 'snoozed',
        delayMs: 0,
        front: true,
        unused: { at: placed!.at, units: 1 },
      },
    ]);
    // Its unit is back: the window has room again, and a goes before b.
    const again = await reserve('q', 10, limited(1));
    expect(again.jobs.map(data)).toEqual(['a']);
    expect(again.jobs[0]!.attempt).toBe(1);
  });

  it("moves a unit in its group's log: a move of a group's unit is placed where its log has room", async () => {
    await add([{ queue: 'q', data: 'a', group: 'g' }]);
    const placed = slotted(await reserve('q', 10, limited(1)));
    const at = placed[0]!.at;
    const group = { key: 'g', group: 'g', allowed: 1, periodMs: PERIOD };
    // Moving a's own unit frees its old time: placed at once.
    const own = await firstValueFrom(ctx.store().rebaseLimit!('q', group, at, 1, 0));
    expect(own.at).toBeLessThan(at + PERIOD);
    // Nothing is recorded one ms before it: the group's log still holds a's unit, so the moved one
    // goes a window later (a log shared by key "g" would be empty and place it at once).
    const moved = await firstValueFrom(ctx.store().rebaseLimit!('q', group, own.at - 1, 1, 0));
    expect(moved.at).toBeGreaterThanOrEqual(own.at + PERIOD);
  });
}
