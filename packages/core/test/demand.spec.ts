import { Demand, InvalidArgumentError, InvalidDemandError } from '@sluice/core';

describe('Demand', () => {
  it('starts at the initial budget and is cumulative', () => {
    const d = new Demand({ initial: 3 });
    d.request(2);
    d.request(1);
    expect(d.outstanding).toBe(6);
  });

  it('rejects request(n) for n <= 0 or non-integers (Reactive Streams 3.9)', () => {
    const d = new Demand({ initial: 0 });
    expect(() => {
      d.request(0);
    }).toThrow(InvalidDemandError);
    expect(() => {
      d.request(-1);
    }).toThrow(InvalidDemandError);
    expect(() => {
      d.request(1.5);
    }).toThrow(InvalidDemandError);
    expect(() => {
      d.request(Number.NaN);
    }).toThrow(InvalidDemandError);
    expect(d.outstanding).toBe(0);
  });

  it('take never grants more than is outstanding, and giveBack returns unused demand', () => {
    const d = new Demand({ initial: 5 });
    expect(d.take(3)).toBe(3);
    expect(d.take(10)).toBe(2);
    expect(d.take(1)).toBe(0);
    d.giveBack(2);
    expect(d.outstanding).toBe(2);
  });

  it('does nothing after cancel, and completes its stream', () => {
    const d = new Demand({ initial: 4 });
    const seen: number[] = [];
    let completed = false;
    d.outstanding$.subscribe({ next: (n) => seen.push(n), complete: () => (completed = true) });
    d.cancel();
    d.request(5);
    d.giveBack(3);
    expect(d.take(1)).toBe(0);
    expect(d.outstanding).toBe(0);
    expect(seen).toEqual([4, 0]);
    expect(completed).toBe(true);
    expect(() => {
      d.cancel();
    }).not.toThrow();
  });

  it('coalesces small replenishments until they reach the threshold', () => {
    const d = new Demand({ initial: 10, coalesce: 3 });
    const seen: number[] = [];
    d.outstanding$.subscribe((n) => seen.push(n));
    d.take(6); // 4 left
    d.request(1);
    d.request(1);
    expect(d.outstanding).toBe(4);
    expect(d.pending).toBe(2);
    d.request(1);
    expect(d.outstanding).toBe(7);
    expect(d.pending).toBe(0);
    expect(seen).toEqual([10, 4, 7]);
  });

  it('never holds back more than the budget, so nothing stalls', () => {
    const d = new Demand({ initial: 2, coalesce: 5 });
    d.take(2);
    d.request(1); // held: 1 < min(5, budget 2)
    expect(d.outstanding).toBe(0);
    d.request(1); // 2 = the whole budget: released
    expect(d.outstanding).toBe(2);
  });

  it('lowers the threshold when the budget shrinks', () => {
    const d = new Demand({ initial: 10, coalesce: 8 });
    d.take(10);
    d.request(3); // held
    d.adjust(-8); // budget 2: held 3 pays the debt first, the rest is released
    expect(d.pending).toBe(0);
  });

  it('takes whole multiples when asked to', () => {
    const d = new Demand({ initial: 250 });
    expect(d.take(1000, 100)).toBe(200);
    expect(d.take(1000, 100)).toBe(0);
    expect(d.outstanding).toBe(50);
  });

  it('adjusts the budget up and down, owing what it cannot withdraw yet', () => {
    const d = new Demand({ initial: 4 });
    d.take(3); // 1 outstanding, 3 in flight
    d.adjust(-3); // withdraw 1 now, owe 2
    expect(d.outstanding).toBe(0);
    d.request(1); // pays debt
    d.request(1); // pays debt
    expect(d.outstanding).toBe(0);
    d.request(1);
    expect(d.outstanding).toBe(1);
    d.adjust(5);
    expect(d.outstanding).toBe(6);
  });

  it('validates its configuration', () => {
    expect(() => new Demand({ initial: -1 })).toThrow(InvalidArgumentError);
    expect(() => new Demand({ initial: 1, coalesce: 0 })).toThrow(InvalidArgumentError);
  });
});

describe('Demand.adjust, withdrawn then added back', () => {
  it('settles what a withdrawal still owes before it adds demand', () => {
    const d = new Demand({ initial: 10 });
    expect(d.take(8)).toBe(8); // 8 in flight, 2 outstanding
    d.adjust(-6); // 2 withdrawn now, 4 owed
    expect(d.outstanding).toBe(0);
    d.adjust(5); // pays the 4 owed, adds 1
    expect(d.outstanding).toBe(1);
    d.request(8); // the 8 in flight come back: none is owed any more
    expect(d.outstanding).toBe(9);
  });
});
