import { cycleRate, median, percentile, slidingWindows, sustainedRate } from '../src/stats';

describe('percentile', () => {
  it('uses the nearest rank', () => {
    const values = [5, 1, 4, 2, 3, 6, 7, 8, 9, 10];
    expect(percentile(values, 50)).toBe(5);
    expect(percentile(values, 95)).toBe(10);
    expect(percentile(values, 99)).toBe(10);
    expect(percentile(values, 10)).toBe(1);
    expect(percentile(values, 0)).toBe(1);
    expect(median([3, 1, 2])).toBe(2);
  });

  it('is NaN without values', () => {
    expect(median([])).toBeNaN();
  });
});

describe('sustainedRate', () => {
  it('is exact for a staircase, wherever the window starts', () => {
    // 400 starts at once every 1005 ms, 20 times: 398.0 per second.
    const times = Array.from({ length: 20 }, (_, k) => Array<number>(400).fill(1000 + k * 1005)).flat();
    expect(sustainedRate(times)).toBeCloseTo((400 * 1000) / 1005, 6);
  });

  it('is the rate of evenly spaced events', () => {
    const times = Array.from({ length: 1000 }, (_, i) => i * 2); // one every 2 ms
    expect(sustainedRate(times)).toBeCloseTo(500, 6);
  });

  it('weights batches by their size', () => {
    const times = Array.from({ length: 30 }, (_, i) => i * 100); // 10 calls per second
    expect(sustainedRate(times, Array<number>(30).fill(100))).toBeCloseTo(1000, 6);
  });

  it('is NaN with fewer than two distinct times', () => {
    expect(sustainedRate([5])).toBeNaN();
    expect(sustainedRate([5, 5])).toBeNaN();
  });
});

describe('slidingWindows', () => {
  it('counts the windows that start at an event and hold more than the limit', () => {
    // 3 at 0, 1 at 500, 2 at 999.5, 1 at 1000: [0, 1000) holds 6.
    const times = [0, 0, 0, 500, 999.5, 999.5, 1000];
    expect(slidingWindows(times, 1000, 5)).toEqual({ max: 6, over: 3 });
    expect(slidingWindows(times, 1000, 6)).toEqual({ max: 6, over: 0 });
  });

  it('treats windows as half-open: a start exactly one period later is in the next window', () => {
    expect(slidingWindows([0, 1000, 2000], 1000, 1)).toEqual({ max: 1, over: 0 });
  });

  it('weights events', () => {
    expect(slidingWindows([0, 100, 1100], 1000, 10, [10, 1, 10])).toEqual({ max: 11, over: 1 });
  });
});

describe('cycleRate', () => {
  it('is exact for a limiter whose bursts the window cuts anywhere', () => {
    // 10 calls of 100 items every 1005 ms, the calls of a burst 3 ms apart; 3.5 bursts.
    const times = Array.from({ length: 35 }, (_, i) => Math.floor(i / 10) * 1005 + (i % 10) * 3);
    expect(cycleRate(times, 10, Array<number>(35).fill(100))).toBeCloseTo((1000 * 1000) / 1005, 6);
  });

  it('is the rate of evenly spaced events', () => {
    const times = Array.from({ length: 1001 }, (_, i) => i * 2.5);
    expect(cycleRate(times, 400)).toBeCloseTo(400, 6);
  });

  it('is NaN without a whole cycle', () => {
    expect(cycleRate([0, 1, 2], 3)).toBeNaN();
    // No whole cycle: units over the measured span when one is given.
    expect(cycleRate([0, 1, 2], 3, [10, 10, 10], 2000)).toBeCloseTo(15, 6);
  });
});
