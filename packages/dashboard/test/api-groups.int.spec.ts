import { firstValueFrom } from 'rxjs';
import { MemoryStore, Queue, silentLogger, Telemetry, type Store, type TelemetryEvent } from '@sluice/core';
import {
  startDashboardServer,
  type DashboardServer,
  type GroupLimitView,
  type GroupListView,
  type JobDetailView,
  type JobListView,
} from '@sluice/dashboard';
import { deleteKeysWithPrefix, RedisStore } from '@sluice/redis';
import { uniquePrefix, useRedis } from '@sluice/testing';
import { ApiClient } from './support';

interface Added {
  readonly ok: true;
  readonly id: string;
  readonly duplicate: boolean;
}

const redis = useRedis();

const stores: readonly [string, () => Promise<{ store: Store; cleanup: () => Promise<void> }>][] = [
  [
    'RedisStore',
    async () => {
      const store = await RedisStore.connect({ url: redis.url, prefix: uniquePrefix('dashboard-groups') });
      return {
        store,
        cleanup: async () => {
          await deleteKeysWithPrefix(store.client, store.keys.prefix);
          await store.close();
        },
      };
    },
  ],
  [
    'MemoryStore',
    () => {
      const store = new MemoryStore();
      return Promise.resolve({ store, cleanup: () => store.close() });
    },
  ],
];

describe.each(stores)('dashboard API: groups (%s)', (_kind, open) => {
  let store: Store;
  let cleanup: () => Promise<void>;
  const telemetry = new Telemetry();
  const events: TelemetryEvent[] = [];
  let server: DashboardServer;
  let readOnly: DashboardServer;
  let api: ApiClient;

  beforeAll(async () => {
    ({ store, cleanup } = await open());
    telemetry.events$.subscribe((e) => events.push(e));
    // The queue exists once something was added to it.
    await new Queue(store, 'hooks').add({ seed: true });
    server = await startDashboardServer({ store, telemetry, port: 0, logger: silentLogger });
    readOnly = await startDashboardServer({ store, port: 0, logger: silentLogger, readOnly: true });
    api = new ApiClient(server.url);
    await api.session();
  });

  afterAll(async () => {
    await server.close();
    await readOnly.close();
    await cleanup();
  });

  const add = (body: unknown) => api.act<Added>('POST', 'api/queues/hooks/jobs', body);
  const groups = (query = '') => api.get<GroupListView>(`api/queues/hooks/groups${query}`);

  it('adds a job with a group, and shows the group on the job and in the list', async () => {
    const added = await add({ data: { n: 1 }, group: 'customer-1', priority: 3, name: 'hook' });
    expect(added.status).toBe(200);
    expect(added.body).toMatchObject({ ok: true, action: 'add', queue: 'hooks', duplicate: false });
    const stored = await store.getJob('hooks', added.body.id);
    expect(stored).toMatchObject({ group: 'customer-1', priority: 3, name: 'hook', data: { n: 1 } });

    const detail = await api.get<{ job: JobDetailView }>(`api/queues/hooks/jobs/${added.body.id}`);
    expect(detail.body.job.options.group).toBe('customer-1');
    const list = await api.get<JobListView>('api/queues/hooks/jobs?state=ready&limit=200');
    expect(list.body.jobs.find((j) => j.id === added.body.id)?.group).toBe('customer-1');
    expect(list.body.jobs.find((j) => j.id !== added.body.id)?.group).toBeUndefined();

    const plain = await add({ data: 'no group' });
    expect((await store.getJob('hooks', plain.body.id))?.group).toBeUndefined();
    expect(
      events.some((e) => e.type === 'action' && e.action === 'add' && e.detail === 'group customer-1'),
    ).toBe(true);
  });

  it('refuses an invalid add with a 400 and adds nothing', async () => {
    const before = (await store.stats('hooks')).counts.ready;
    for (const body of [
      { group: 'x' }, // no data
      { data: 1, group: 'g'.repeat(257) },
      { data: 1, group: 42 },
      { data: 1, priority: -1 },
      { data: 1, delayMs: 1.5 },
      { data: 1, colour: 'red' },
    ]) {
      const r = await add(body);
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ error: { status: 400 } });
    }
    expect((await store.stats('hooks')).counts.ready).toBe(before);
  });

  it('filters a queue’s jobs by group (exact match, scanning the state)', async () => {
    await add({ data: { n: 2 }, group: 'customer-10' });
    await add({ data: { n: 3 }, group: 'customer-1' });
    const r = await api.get<JobListView>('api/queues/hooks/jobs?state=ready&group=customer-1');
    expect(r.status).toBe(200);
    expect(r.body.jobs.map((j) => j.group)).toEqual(['customer-1', 'customer-1']);
    expect(r.body.filter).toMatchObject({ group: 'customer-1', complete: true });
    const none = await api.get<JobListView>('api/queues/hooks/jobs?state=ready&group=customer');
    expect(none.body.jobs).toEqual([]);
    const bad = await api.get(`api/queues/hooks/jobs?group=${'g'.repeat(257)}`);
    expect(bad.status).toBe(400);
  });

  it('lists groups busiest first with their counts, a page at a time', async () => {
    for (let i = 0; i < 5; i++) await add({ data: { i }, group: 'big' });
    for (let i = 0; i < 3; i++) await add({ data: { i }, group: 'mid' });
    await add({ data: {}, group: 'a-small' });
    await add({ data: {}, group: 'z-small' });

    const all = await groups();
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({
      queue: 'hooks',
      offset: 0,
      total: 6,
      paused: 0,
      complete: true,
      hasMore: false,
      canPause: true,
    });
    expect(all.body.groups.map((g) => [g.group, g.ready, g.active, g.paused])).toEqual([
      ['big', 5, 0, false],
      ['mid', 3, 0, false],
      ['customer-1', 2, 0, false],
      ['a-small', 1, 0, false],
      ['customer-10', 1, 0, false],
      ['z-small', 1, 0, false],
    ]);

    const page2 = await groups('?offset=2&limit=2');
    expect(page2.body.groups.map((g) => g.group)).toEqual(['customer-1', 'a-small']);
    expect(page2.body).toMatchObject({ offset: 2, limit: 2, hasMore: true, total: 6 });
    const last = await groups('?offset=4&limit=2');
    expect(last.body.groups.map((g) => g.group)).toEqual(['customer-10', 'z-small']);
    expect(last.body.hasMore).toBe(false);

    expect((await groups('?limit=0')).status).toBe(400);
    expect((await api.get('api/queues/nope/groups')).status).toBe(404);
  });

  it('counts leased jobs of a group as active', async () => {
    const before = new Map((await groups()).body.groups.map((g) => [g.group, g]));
    const reserved = await firstValueFrom(store.reserve('hooks', 4, { leaseMs: 60_000 }));
    const leased = new Map<string, number>();
    for (const job of reserved.jobs) {
      if (job.group !== undefined) leased.set(job.group, (leased.get(job.group) ?? 0) + 1);
    }
    expect(leased.size).toBeGreaterThan(0); // groups take turns with the ungrouped jobs
    const after = new Map((await groups()).body.groups.map((g) => [g.group, g]));
    for (const [group, n] of leased) {
      expect(after.get(group)?.active).toBe(n);
      expect(after.get(group)?.ready).toBe((before.get(group)?.ready ?? 0) - n);
    }
  });

  it('pauses and resumes one group, as an action with telemetry; the others stay as they were', async () => {
    const paused = await api.act<{ ok: boolean; group: string; paused: boolean }>(
      'POST',
      'api/queues/hooks/groups/mid/pause',
    );
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ ok: true, action: 'pause-group', group: 'mid', paused: true });
    const after = await groups();
    expect(after.body.paused).toBe(1);
    expect(after.body.groups.filter((g) => g.paused).map((g) => g.group)).toEqual(['mid']);
    expect(
      (await store.listGroups!('hooks', { limit: 100 })).filter((g) => g.paused).map((g) => g.group),
    ).toEqual(['mid']);
    expect(events.some((e) => e.type === 'action' && e.action === 'pause-group' && e.detail === 'mid')).toBe(
      true,
    );

    // A group name with a slash and spaces travels percent-encoded.
    await add({ data: {}, group: 'tenant/a b' });
    const odd = await api.act('POST', `api/queues/hooks/groups/${encodeURIComponent('tenant/a b')}/pause`);
    expect(odd.status).toBe(200);
    expect((await groups()).body.groups.find((g) => g.group === 'tenant/a b')?.paused).toBe(true);

    const resumed = await api.act('POST', 'api/queues/hooks/groups/mid/resume');
    expect(resumed.status).toBe(200);
    expect((await groups()).body.groups.find((g) => g.group === 'mid')?.paused).toBe(false);

    const tooLong = await api.act('POST', `api/queues/hooks/groups/${'g'.repeat(257)}/pause`);
    expect(tooLong.status).toBe(400);
  });

  it('refuses group actions and adds in read-only mode, and says it cannot pause', async () => {
    const client = new ApiClient(readOnly.url);
    await client.session();
    expect((await client.act('POST', 'api/queues/hooks/groups/big/pause')).status).toBe(403);
    expect((await client.act('POST', 'api/queues/hooks/jobs', { data: 1 })).status).toBe(403);
    expect((await client.get<GroupListView>('api/queues/hooks/groups')).body.canPause).toBe(false);
    expect((await groups()).body.groups.find((g) => g.group === 'big')?.paused).toBe(false);
  });

  const limitPath = (group: string) => `api/queues/hooks/groups/${encodeURIComponent(group)}/limit`;

  it('sets, shows and clears the numbers of one group, as an action with telemetry', async () => {
    const before = await api.get<GroupLimitView>(limitPath('big'));
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({ queue: 'hooks', group: 'big', override: null, canSet: true });

    const set = await api.act<{ override: unknown }>('PUT', limitPath('big'), {
      allowed: 100,
      periodMs: 1000,
    });
    expect(set.status).toBe(200);
    expect(set.body).toMatchObject({
      ok: true,
      action: 'set-group-limit',
      queue: 'hooks',
      group: 'big',
      override: { allowed: 100, periodMs: 1000 },
      detail: 'big: 100 per 1000 ms',
    });
    expect(await store.getGroupLimit!('hooks', 'big')).toEqual({ allowed: 100, periodMs: 1000 });
    expect((await api.get<GroupLimitView>(limitPath('big'))).body.override).toEqual({
      allowed: 100,
      periodMs: 1000,
    });
    expect(
      events.some(
        (e) => e.type === 'action' && e.action === 'set-group-limit' && e.detail === 'big: 100 per 1000 ms',
      ),
    ).toBe(true);

    // The list shows it on its group; the others have none.
    const list = await groups();
    expect(list.body.canSetLimit).toBe(true);
    const overrides = new Map(list.body.groups.map((g) => [g.group, g.limitOverride]));
    expect(overrides.get('big')).toEqual({ allowed: 100, periodMs: 1000 });
    expect([...overrides].filter(([, o]) => o !== null).map(([g]) => g)).toEqual(['big']);

    // A group with no job yet, its name percent-encoded, can be given its numbers ahead of its jobs.
    const ahead = await api.act('PUT', limitPath('premium/a b'), { allowed: 5, periodMs: 60_000 });
    expect(ahead.status).toBe(200);
    expect(await store.getGroupLimit!('hooks', 'premium/a b')).toEqual({ allowed: 5, periodMs: 60_000 });

    for (const group of ['big', 'premium/a b']) {
      const cleared = await api.act<{ override: unknown }>('PUT', limitPath(group), { clear: true });
      expect(cleared.status).toBe(200);
      expect(cleared.body).toMatchObject({ group, override: null, detail: `${group}: cleared` });
      expect(await store.getGroupLimit!('hooks', group)).toBeNull();
    }
    expect((await groups()).body.groups.every((g) => g.limitOverride === null)).toBe(true);
  });

  it('refuses bad numbers and group names (400 with the message) and a forged CSRF token (403)', async () => {
    for (const [body, message] of [
      [{}, '"allowed" must be an integer from 1 to 1000000 (or send { "clear": true })'],
      [{ allowed: 0, periodMs: 1000 }, '"allowed" must be an integer from 1 to 1000000'],
      [{ allowed: 1.5, periodMs: 1000 }, '"allowed" must be an integer from 1 to 1000000'],
      [{ allowed: '10', periodMs: 1000 }, '"allowed" must be an integer from 1 to 1000000'],
      [{ allowed: 10 }, '"periodMs" must be an integer from 1 to 86400000'],
      [{ allowed: 10, periodMs: -1 }, '"periodMs" must be an integer from 1 to 86400000'],
      [{ allowed: 10, periodMs: 86_400_001 }, '"periodMs" must be an integer from 1 to 86400000'],
      [
        { clear: true, allowed: 10, periodMs: 1000 },
        'send { "allowed", "periodMs" } or { "clear": true }, not both',
      ],
    ] as const) {
      const res = await api.act('PUT', limitPath('big'), body);
      expect({ body, status: res.status, message: res.body.error.message }).toEqual({
        body,
        status: 400,
        message: expect.stringContaining(message) as unknown,
      });
    }
    const long = 'g'.repeat(257);
    for (const res of [
      await api.act('PUT', limitPath(long), { allowed: 10, periodMs: 1000 }),
      await api.get(limitPath(long)),
    ]) {
      expect({ status: res.status, message: res.body.error.message }).toEqual({
        status: 400,
        message: 'group must be a non-empty string of at most 256 characters, got a string of 257 characters',
      });
    }
    expect(
      (await api.act('PUT', 'api/queues/nope/groups/big/limit', { allowed: 1, periodMs: 1 })).status,
    ).toBe(404);
    expect((await api.get('api/queues/nope/groups/big/limit')).status).toBe(404);
    const forged = await fetch(`${server.url}${limitPath('big')}`, {
      method: 'PUT',
      headers: api.headers({ 'Content-Type': 'application/json', 'X-CSRF-Token': 'forged' }),
      body: JSON.stringify({ allowed: 1, periodMs: 1000 }),
    });
    expect(forged.status).toBe(403);
    expect(await store.getGroupLimit!('hooks', 'big')).toBeNull();
  });

  it('refuses to set a group’s numbers when read-only, and says it cannot', async () => {
    await store.setGroupLimit!('hooks', 'mid', { allowed: 7, periodMs: 500 });
    try {
      const client = new ApiClient(readOnly.url);
      await client.session();
      const res = await client.act('PUT', limitPath('mid'), { clear: true });
      expect(res.status).toBe(403);
      expect(res.body.error.code).toBe('read_only');
      expect(await store.getGroupLimit!('hooks', 'mid')).toEqual({ allowed: 7, periodMs: 500 });
      // Still shown, with no way to change it.
      const shown = await client.get<GroupLimitView>(limitPath('mid'));
      expect(shown.body).toMatchObject({ override: { allowed: 7, periodMs: 500 }, canSet: false });
      const list = await client.get<GroupListView>('api/queues/hooks/groups');
      expect(list.body.canSetLimit).toBe(false);
      expect(list.body.groups.find((g) => g.group === 'mid')?.limitOverride).toEqual({
        allowed: 7,
        periodMs: 500,
      });
    } finally {
      await store.setGroupLimit!('hooks', 'mid', null);
    }
  });

  it('reads the numbers of the groups on the page only', async () => {
    const read = jest.spyOn(store, 'getGroupLimit');
    try {
      const page = await groups('?offset=1&limit=2');
      expect(page.body.groups).toHaveLength(2);
      expect(read.mock.calls).toEqual(page.body.groups.map((g) => ['hooks', g.group]));
    } finally {
      read.mockRestore();
    }
  });

  it('answers 501 for a group’s numbers on a store without the capability', async () => {
    // The same store without setGroupLimit and getGroupLimit.
    const without = new Proxy(store, {
      get(target, property, receiver) {
        if (property === 'setGroupLimit' || property === 'getGroupLimit') return undefined;
        const value: unknown = Reflect.get(target, property, receiver);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });
    const bare = await startDashboardServer({ store: without, port: 0, logger: silentLogger });
    try {
      const client = new ApiClient(bare.url);
      await client.session();
      for (const res of [
        await client.act('PUT', limitPath('big'), { allowed: 10, periodMs: 1000 }),
        await client.get(limitPath('big')),
      ]) {
        expect({ status: res.status, code: res.body.error.code }).toEqual({
          status: 501,
          code: 'not_supported',
        });
        expect(res.body.error.message).toMatch(/cannot set group rate limits/);
      }
      const list = await client.get<GroupListView>('api/queues/hooks/groups');
      expect(list.status).toBe(200);
      expect(list.body.canSetLimit).toBe(false);
      expect(list.body.groups.every((g) => g.limitOverride === null)).toBe(true);
    } finally {
      await bare.close();
    }
  });

  it('reads at most groupScanLimit groups, and says the list is incomplete', async () => {
    const limited = await startDashboardServer({ store, port: 0, logger: silentLogger, groupScanLimit: 3 });
    try {
      const r = await new ApiClient(limited.url).get<GroupListView>('api/queues/hooks/groups');
      expect(r.body).toMatchObject({ total: 3, complete: false, scanLimit: 3 });
      expect(r.body.groups).toHaveLength(3);
    } finally {
      await limited.close();
    }
  });
});
