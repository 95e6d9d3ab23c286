import { firstValueFrom } from 'rxjs';
import { maxInAnyWindow } from '@sluice/core';
import { sleep, storeFixture, useRedisWithAdmin } from './helpers';

/**
 * The rate-limit log's own bookkeeping (includes/limiter.lua) through a busy mix of reserves that
 * place slots ahead of now and moves of late units among them: entries stay in time order, the
 * unit count (field n) and the units before where the last scan stopped (fields k, kw) match the
 * entries, and no window holds more than the limit. What the store contract checks from outside,
 * checked here from inside, where a wrong count would only show much later as one unit too many.
 */
describe('rate-limit log bookkeeping', () => {
  const redis = useRedisWithAdmin();

  it('keeps entries in order and its counts exact through reserves ahead of now and moves in place', async () => {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'limit-log');
    try {
      const { store } = fx;
      const allowed = 200; // dense: slots about 1.5 ms apart
      const periodMs = 300;
      const limit = { allowed, periodMs: periodMs + 10, marginMs: 10 };
      await firstValueFrom(store.enqueue(Array.from({ length: 4000 }, (_, n) => ({ queue: 'q', data: n }))));
      let seed = 7;
      const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
      const units: { at: number; moves: number }[] = [];
      let moves = 0;
      let checks = 0;
      let scansResumed = 0;
      const problems: string[] = [];
      // The log: the one key of the prefix holding a hash with the log's fields. It expires a second
      // after its last slot: a test process stalled that long (a loaded machine) finds none, and a
      // check then has nothing to look at.
      let logKey: string | undefined;
      const findLog = async (): Promise<string | undefined> => {
        for (const key of await redis.admin.keys(`${fx.prefix}*`)) {
          if ((await redis.admin.type(key)) !== 'hash') continue;
          if ((await redis.admin.hmget(key, 'h', 't', 'n')).every((v) => v !== null)) return key;
        }
        return undefined;
      };
      const check = async (): Promise<void> => {
        logKey ??= await findLog();
        if (logKey === undefined) return;
        {
          const h = await redis.admin.hgetall(logKey);
          if (h.h === undefined) return;
          const head = Number(h.h);
          const tail = Number(h.t);
          const stop = Number(h.k ?? head);
          let previous = -Infinity;
          let sum = 0;
          let before = 0;
          for (let i = head; i < tail; i++) {
            const [t, c] = (h[String(i)] ?? 'x').split(':').map(Number) as [number, number];
            if (!(t >= previous)) problems.push(`entry ${i} at ${t} before ${previous}`);
            previous = t;
            sum += c;
            if (i < stop) before += c;
          }
          if (sum !== Number(h.n)) problems.push(`n ${h.n}, entries hold ${sum}`);
          if (before !== Number(h.kw ?? 0)) problems.push(`kw ${h.kw}, entries before k hold ${before}`);
          if (stop > head) scansResumed++;
          checks++;
        }
      };
      // Three seconds of random work, and on until the work did all the test looks at (a loaded
      // machine makes fewer steps in three seconds), up to twenty.
      const start = Date.now();
      let steps = 0;
      const enough = (): boolean => checks > 5 && scansResumed > 0 && moves > 20 && units.length > 100;
      while (Date.now() - start < 3000 || (!enough() && Date.now() - start < 20_000)) {
        steps++;
        if (rnd() < 0.7) {
          const r = await firstValueFrom(
            store.reserve('q', 1 + Math.floor(rnd() * 12), {
              leaseMs: 60_000,
              limit,
              limitLeadMs: 20 + Math.floor(rnd() * 20),
              limitAheadMs: 60 + Math.floor(rnd() * 80),
              limitSpread: true,
            }),
          );
          for (const s of r.slots ?? []) for (let i = 0; i < s.jobs; i++) units.push({ at: s.at, moves: 0 });
        } else {
          // A unit whose slot came a little while ago was found late: moved, some of them again;
          // now and then one from most of a window ago (before where the scans stop).
          const now = await firstValueFrom(store.storeTime('q'));
          const back = rnd() < 0.2 ? 280 : 60;
          const late = units.filter((u) => u.at <= now && u.at > now - back && u.moves < 3);
          const u = late[Math.floor(rnd() * late.length)];
          if (u) {
            u.at = (await firstValueFrom(store.rebaseLimit('q', limit, u.at, 1, Math.floor(rnd() * 10)))).at;
            u.moves++;
            moves++;
          }
        }
        if (steps % 20 === 0) await check();
      }
      await check();
      expect(problems).toEqual([]);
      expect(checks).toBeGreaterThan(5);
      expect(scansResumed).toBeGreaterThan(0); // the scans did resume where the last one stopped
      expect(moves).toBeGreaterThan(20);
      expect(units.length).toBeGreaterThan(100);
      expect(
        maxInAnyWindow(
          units.map((u) => u.at),
          periodMs + 10,
        ),
      ).toBeLessThanOrEqual(allowed);
    } finally {
      await fx.cleanup!();
    }
  }, 30_000);
  it('finds a late unit in a long log by bisection when the limit has room, and moves it in place', async () => {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'limit-log-bisect');
    try {
      const { store } = fx;
      // Far more room than is used: 300 units spread two a millisecond make 150 entries.
      const limit = { allowed: 100_000, periodMs: 60_000 };
      const granted = await firstValueFrom(
        store.grantLimit('q', limit, 300, { spread: true, aheadMs: 1_000 }),
      );
      expect(granted.slots).toHaveLength(150);
      const from = granted.slots[3]!.at;
      while ((await firstValueFrom(store.storeTime('q'))) <= granted.slots[149]!.at) await sleep(20);
      const hgets = async (): Promise<number> =>
        Number(/^cmdstat_hget:calls=(\d+)/m.exec(await redis.admin.info('commandstats'))?.[1] ?? 0);
      const before = await hgets();
      const moved = await firstValueFrom(store.rebaseLimit('q', limit, from, 1, 0));
      const reads = (await hgets()) - before;
      // Bisection over 150 entries and the newest ones: a scan back to the fourth entry reads ~146.
      expect(reads).toBeLessThan(40);
      expect(moved.at).toBeGreaterThan(granted.slots[149]!.at);
      const log = await redis.admin.hgetall(store.keys.limiter('q', 'q'));
      const entries = Object.entries(log)
        .filter(([k]) => /^\d+$/.test(k))
        .map(([, v]) => v.split(':').map(Number) as [number, number]);
      expect(entries.find(([t]) => t === from)?.[1]).toBe(1);
      expect(entries.find(([t]) => t === moved.at)?.[1]).toBe(1);
      expect(Number(log.n)).toBe(300);
      const times = entries.map(([t]) => t);
      expect(times).toEqual([...times].sort((a, b) => a - b));
    } finally {
      await fx.cleanup!();
    }
  });
  it("holds the widest margin asked for 10 s plus the limit's window: a unit started that late keeps clear of later ones", async () => {
    const fx = await storeFixture(redis.admin, { url: redis.url }, 'limit-log-hold');
    try {
      const { store } = fx;
      const wide = { key: 'm', allowed: 1, periodMs: 1300, marginMs: 300 };
      const narrow = { key: 'm', allowed: 1, periodMs: 1010, marginMs: 10 };
      const first = await firstValueFrom(store.grantLimit('q', wide, 1, { aheadMs: 3_000 }));
      const t0 = first.slots[0]!.at;
      const key = store.keys.limiter('q', 'm');
      // The wide margin was asked 10.5 s ago: past 10 s, within 10 s and the window (1 s).
      await redis.admin.hset(key, 'Mt', String(first.now - 10_500));
      const held = await firstValueFrom(store.grantLimit('q', narrow, 1, { aheadMs: 3_000 }));
      expect(held.slots).toEqual([{ at: t0 + 1300, units: 1 }]);
      // Asked 11.5 s ago: no longer held, the narrow caller's own margin counts.
      await redis.admin.hset(key, 'M', '300', 'Mt', String(first.now - 11_500));
      const own = await firstValueFrom(store.grantLimit('q', narrow, 1, { aheadMs: 3_000 }));
      expect(own.slots).toEqual([{ at: t0 + 1300 + 1010, units: 1 }]);
    } finally {
      await fx.cleanup!();
    }
  });
});
