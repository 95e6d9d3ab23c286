import { LeaseClock, preciseNow } from '@sluice/core/internal';

/** A small deterministic generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('LeaseClock', () => {
  it('maps store time onto the local clock within the fastest round trip, however the store stamps calls', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = random(seed);
      const offset = 7_234.4 + seed * 1_000.37; // store = local + offset
      const clock = new LeaseClock();
      let local = 1_000_000;
      for (let i = 0; i < 200; i++) {
        local += rnd() * 50;
        // Mostly slow round trips (a busy server), stamped anywhere in them; a few quick ones.
        const trip = rnd() < 0.1 ? 0.3 : 2 + rnd() * 20;
        const stampedAt = local + rnd() * trip;
        clock.observe(Math.floor(local), Math.floor(local + trip), Math.floor(stampedAt + offset));
        const probe = Math.floor(stampedAt + offset);
        if (i >= 20) expect(Math.abs(clock.toLocal(probe) - stampedAt)).toBeLessThanOrEqual(2.5);
      }
    }
  });

  it('is no better than the round trips it saw, and no worse', () => {
    const clock = new LeaseClock();
    // Store = local + 100; every call takes 10 ms and is stamped at its very end.
    for (let t = 0; t < 10; t++) clock.observe(t * 100, t * 100 + 10, t * 100 + 10 + 100);
    // Offset bounded by [100 − 1, 110 + 1]: the estimate is the middle.
    expect(clock.toLocal(1_000)).toBeCloseTo(1_000 - 105, 5);
  });

  it('bounds the local time of a store time by every call seen, each widened by a millisecond', () => {
    const clock = new LeaseClock();
    expect(clock.bounds(5)).toEqual([-Infinity, Infinity]);
    // Store = local + 1000. A slow call (4 ms) bounds it loosely, a quick one tightly.
    clock.observe(100, 104, 1102);
    expect(clock.bounds(1102)).toEqual([99, 105]);
    clock.observe(200, 200, 1200);
    expect(clock.bounds(1200)).toEqual([199, 201]);
    expect(clock.toLocal(1300)).toBe(300);
  });

  it("widens the bounds by the store clock's millisecond only when local readings are fractional", () => {
    const clock = new LeaseClock();
    clock.observe(100.25, 100.75, 1100);
    const [earliest, latest] = clock.bounds(1100);
    expect(earliest).toBeCloseTo(99.25, 9);
    expect(latest).toBeCloseTo(100.75, 9);
  });

  it('reads the wall clock to a fraction of a millisecond, and a virtual clock as it is', () => {
    const fine = (): number => performance.timeOrigin + performance.now();
    // A scheduler on performance's clock in whole milliseconds: refined to a fraction (a reading
    // whose process was descheduled between the two clocks' reads may fall back: one of 50 is enough).
    const refined = preciseNow({ now: () => Math.floor(fine()) });
    expect(Array.from({ length: 50 }, () => refined()).some((r) => !Number.isInteger(r))).toBe(true);
    // A scheduler 2 ms or more away from performance's clock (virtual time, or a long-lived process
    // on a machine whose clock was adjusted) is read as it is.
    expect(preciseNow({ now: () => 5 })()).toBe(5);
    let given = 0;
    const away = preciseNow({ now: () => (given = Math.floor(fine()) + 1000) });
    expect(away()).toBe(given);
  });

  it('starts afresh when the store clock steps', () => {
    const clock = new LeaseClock();
    for (let t = 0; t < 10; t++) clock.observe(t * 100, t * 100 + 1, t * 100);
    expect(Math.abs(clock.toLocal(500) - 500)).toBeLessThanOrEqual(1);
    // The store clock jumps 5 s ahead.
    clock.observe(2_000, 2_001, 7_000);
    expect(Math.abs(clock.toLocal(7_000) - 2_000)).toBeLessThanOrEqual(1);
  });

  it('the same clock maps to itself (a scheduler that answers at once)', () => {
    const clock = new LeaseClock();
    clock.observe(50, 50, 50);
    expect(clock.toLocal(80)).toBe(80);
  });
});
