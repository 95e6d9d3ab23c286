import { withTimeout } from '../src/clock';

/** Timers of this process that would keep it alive. */
const pendingTimers = (): number =>
  process.getActiveResourcesInfo().filter((type) => type === 'Timeout').length;

describe('withTimeout', () => {
  it('answers what the promise answers, leaving no timer behind', async () => {
    const before = pendingTimers();
    await expect(withTimeout(Promise.resolve(7), 60_000, 'late')).resolves.toBe(7);
    expect(pendingTimers()).toBe(before);
  });

  it("passes the promise's own rejection on, leaving no timer behind", async () => {
    const before = pendingTimers();
    await expect(withTimeout(Promise.reject(new Error('broke')), 60_000, 'late')).rejects.toThrow('broke');
    expect(pendingTimers()).toBe(before);
  });

  it('rejects with the message once the time has passed first', async () => {
    const never = new Promise<never>(() => undefined);
    await expect(withTimeout(never, 5, 'not within 5 ms')).rejects.toThrow('not within 5 ms');
  });
});
