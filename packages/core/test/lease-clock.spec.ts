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

  it("keeps a quick round trip's bounds through a long stretch of slow ones, widened by the drift allowed", () => {
    // Store = local + 2,000. One quick call, then 3 s of slow ones, far more than the 64 recent
    // calls kept as they are: a loaded machine, where the store answers at once (within 2 ms) and
    // the answer then waits 20–40 ms for its process to be scheduled.
    const offset = 2_000;
    const clock = new LeaseClock();
    clock.observe(1_000.2, 1_000.7, Math.floor(1_000.5 + offset));
    const [e0, l0] = clock.bounds(1_000 + offset);
    const rnd = random(7);
    let local = 1_001;
    while (local < 4_000) {
      local += 5 + rnd() * 10;
      const trip = 20 + rnd() * 20;
      const stampedAt = local + rnd() * 2;
      clock.observe(local, local + trip, Math.floor(stampedAt + offset));
    }
    const slot = local + 50 + offset; // a slot a little ahead, as a reserve places it
    const [earliest, latest] = clock.bounds(slot);
    // As narrow as the quick call, plus the default 500 ppm a side over the ~3 s since: inside a margin.
    expect(latest - earliest).toBeLessThanOrEqual(l0 - e0 + 2 * 5e-4 * (slot - offset - 1_000.2) + 1e-9);
    expect(latest - earliest).toBeLessThan(6);
    // And still true.
    expect(earliest).toBeLessThanOrEqual(slot - offset);
    expect(latest).toBeGreaterThanOrEqual(slot - offset);
  });

  it("widens an older call's bounds by the drift allowed since it was made, once the recent calls are slower", () => {
    const clock = new LeaseClock(64, { driftPpm: 100 });
    clock.observe(0.25, 0.75, 1_000); // offset in [999.25, 1000.75]
    // 64 slow calls (10 ms, stamped in the middle) push it out of the recent ones.
    for (let i = 1; i <= 64; i++) clock.observe(i * 100, i * 100 + 10, 1_000 + i * 100 + 5);
    const [e, l] = clock.bounds(1_000 + 10_000);
    // 10 s after it: 1 ms a side more than it said.
    expect(e).toBeCloseTo(10_000 - 0.75 - 1.0, 3);
    expect(l).toBeCloseTo(10_000 + 0.75 + 1.0, 3);
    // Without the allowance it would hold as it was, forever.
    const exact = new LeaseClock(64, { driftPpm: 0 });
    exact.observe(0.25, 0.75, 1_000);
    for (let i = 1; i <= 64; i++) exact.observe(i * 100, i * 100 + 10, 1_000 + i * 100 + 5);
    expect(exact.bounds(11_000)).toEqual([10_000 - 0.75, 10_000 + 0.75]);
  });

  it('holds the true time through slow stretches while the clocks drift apart within the allowance', () => {
    // The store's clock runs 400 ppm fast (the default allows 500). A quick call each 3 s; between
    // them slow calls (the answer waits 20–40 ms for its process), so the bounds lean on the older
    // quick call.
    const clock = new LeaseClock();
    const storeOf = (local: number): number => 9_000 + local * 1.0004;
    const rnd = random(11);
    let worstOutside = 0;
    for (let local = 0; local < 60_000; local += 10 + rnd() * 10) {
      const quick = Math.floor(local / 3_000) !== Math.floor((local - 20) / 3_000);
      const trip = quick ? 0.5 : 20 + rnd() * 20;
      clock.observe(local, local + trip, Math.floor(storeOf(local + (quick ? 0.25 : rnd() * 2))));
      const probe = local + 50;
      const [earliest, latest] = clock.bounds(storeOf(probe));
      worstOutside = Math.max(worstOutside, earliest - probe, probe - latest);
      expect(latest - earliest).toBeLessThan(8);
    }
    // Within what the recent calls, taken as they are, drift over their span (a few tenths).
    expect(worstOutside).toBeLessThan(0.5);
  });

  it('clocks drifting apart faster than allowed: the older calls start afresh once they disagree, off by a millisecond at most till then', () => {
    // The store's clock runs 1,500 ppm fast (three times the default allowance); a quick call each
    // second. Beside it, a clock whose older calls count for nothing (the recent 64 alone).
    const clock = new LeaseClock();
    const recentOnly = new LeaseClock(64, { driftPpm: 1e6 });
    const storeOf = (local: number): number => 5_000 + local * 1.0015;
    const outside = ([earliest, latest]: readonly [number, number], at: number): number =>
      Math.max(0, earliest - at, at - latest);
    const rnd = random(3);
    let worst = 0;
    for (let local = 0; local < 60_000; local += 10 + rnd() * 10) {
      const quick = Math.floor(local / 1_000) !== Math.floor((local - 20) / 1_000);
      const trip = quick ? 0.4 : 3 + rnd() * 5;
      const stamped = Math.floor(storeOf(local + (quick ? 0.2 : rnd() * 2)));
      clock.observe(local, local + trip, stamped);
      recentOnly.observe(local, local + trip, stamped);
      const probe = local + 20;
      const bounds = clock.bounds(storeOf(probe));
      expect(bounds[0]).toBeLessThanOrEqual(bounds[1]);
      worst = Math.max(worst, outside(bounds, probe) - outside(recentOnly.bounds(storeOf(probe)), probe));
      expect(bounds[1] - bounds[0]).toBeLessThan(8);
    }
    // Beyond the allowance the older calls can mislead until a call disagrees with them: by 0.9 ms
    // here, against 8 ms a start may run after its slot.
    expect(worst).toBeLessThan(1.2);
  });

  it('the same clock maps to itself (a scheduler that answers at once)', () => {
    const clock = new LeaseClock();
    clock.observe(50, 50, 50);
    expect(clock.toLocal(80)).toBe(80);
  });
});
