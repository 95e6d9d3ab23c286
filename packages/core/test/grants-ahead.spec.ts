import { Demand } from '@sluice/core';
import { GrantsAhead } from '@sluice/core/internal';

/**
 * A pipeline of `concurrency` handlers whose limit may grant 2 rounds ahead (20 jobs for 10
 * handlers), one job per call, waiting at most 4 ms for a handler.
 */
function setUp(concurrency = 10, unitSize = 1) {
  const most = (c: number): number => 2 * c * unitSize;
  const demand = new Demand({ initial: concurrency * unitSize + most(concurrency) });
  const changes: number[] = [];
  const changed = (jobs: number): void => {
    changes.push(jobs);
  };
  const ahead = new GrantsAhead({ demand, most, unitSize, waitMs: 4, concurrency, changed });
  return { demand, ahead, changes };
}

describe('GrantsAhead', () => {
  it('grants the whole lead while units find handlers in time', () => {
    const { demand, ahead } = setUp();
    for (let i = 0; i < 200; i++) ahead.waited(i % 5);
    expect(ahead.allowed).toBe(20);
    expect(demand.outstanding).toBe(30);
  });

  it('grants none ahead once a unit waited too long for a handler, withdrawing them from the demand', () => {
    const { demand, ahead } = setUp();
    ahead.waited(4.5);
    expect(ahead.allowed).toBe(0);
    expect(demand.outstanding).toBe(10);
  });

  it('cuts once for the jobs that were ahead when it decided: their own waits do not cut again', () => {
    const { demand, ahead } = setUp();
    ahead.waited(9);
    // The 20 granted before the cut come and wait too: no further change (nothing left to cut).
    for (let i = 0; i < 19; i++) ahead.waited(9);
    expect(ahead.allowed).toBe(0);
    expect(demand.outstanding).toBe(10);
  });

  it('doubles the jobs ahead (from one) after 8 rounds of units found handlers in time, up to the lead', () => {
    const { demand, ahead } = setUp();
    ahead.waited(9);
    for (let i = 0; i < 20; i++) ahead.waited(0); // the cut's own round
    const allowed: number[] = [];
    for (let round = 0; round < 8 * 6; round++) {
      for (let i = 0; i < 10; i++) ahead.waited(0);
      if (round % 8 === 7) allowed.push(ahead.allowed);
    }
    // 20 admissions went to the cut's own round: the first doubling comes 80 in-time units after it.
    expect(allowed).toEqual([1, 2, 4, 8, 16, 20]);
    expect(demand.outstanding).toBe(30);
  });

  it('a probe whose unit waits goes back to none; each change is told', () => {
    const { ahead, changes } = setUp();
    ahead.waited(9);
    for (let i = 0; i < 20 + 80; i++) ahead.waited(0);
    expect(ahead.allowed).toBe(1);
    ahead.waited(9);
    expect(ahead.allowed).toBe(0);
    expect(changes).toEqual([0, 1, 0]);
  });

  it('grows in whole calls when a unit is a batch', () => {
    const { ahead } = setUp(4, 25); // 4 handlers of 25 jobs a call: up to 200 ahead
    expect(ahead.allowed).toBe(200);
    ahead.waited(9);
    for (let i = 0; i < 8 + 32; i++) ahead.waited(0);
    expect(ahead.allowed).toBe(25);
  });

  it('follows a concurrency change: the cut holds for the new number of handlers', () => {
    const { demand, ahead } = setUp();
    ahead.waited(9);
    expect(demand.outstanding).toBe(10);
    // The worker raises the concurrency to 20 and adds the whole budget's change (10 + 20 ahead).
    demand.adjust(30);
    ahead.concurrencyChanged(20);
    expect(ahead.allowed).toBe(0);
    expect(demand.outstanding).toBe(20);
    // Lowered to 5 (the budget's change: −15 handlers' jobs and ahead).
    demand.adjust(-45);
    ahead.concurrencyChanged(5);
    expect(ahead.allowed).toBe(0);
    expect(demand.outstanding).toBe(5);
  });
});
