import { DEFAULT_HINT } from '../src/codec';
import { SettleHints } from '../src/settle-hints';

describe('SettleHints', () => {
  it('answers each job of a lease its hint, the default for the rest, until the lease is settled', () => {
    const hints = new SettleHints();
    hints.remember('t1', 3, new Map([['b', '2|3||g']]));
    hints.remember('t2', 1);
    expect(hints.size).toBe(4);
    expect(hints.take('t1', 'a')).toBe(DEFAULT_HINT);
    expect(hints.take('t1', 'b')).toBe('2|3||g');
    expect(hints.take('t2', 'x')).toBe(DEFAULT_HINT);
    expect(hints.size).toBe(1);
    // A token never leased here, and one whose jobs were all taken, have none: the script reads.
    expect(hints.take('t9', 'a')).toBe('');
    expect(hints.take('t2', 'x')).toBe('');
    expect(hints.take('t1', 'c')).toBe(DEFAULT_HINT);
    expect(hints.take('t1', 'a')).toBe('');
    expect(hints.size).toBe(0);
  });

  it('keeps at most max jobs, forgetting the oldest leases first', () => {
    const hints = new SettleHints(5);
    hints.remember('t1', 2);
    hints.remember('t2', 2);
    hints.remember('t3', 2);
    expect(hints.size).toBe(4);
    expect(hints.take('t1', 'a')).toBe('');
    expect(hints.take('t2', 'a')).toBe(DEFAULT_HINT);
    // A lease remembered again replaces what was kept of it.
    hints.remember('t3', 1, new Map([['z', '1|||']]));
    expect(hints.size).toBe(2);
    expect(hints.take('t3', 'z')).toBe('1|||');
    expect(hints.take('t3', 'z')).toBe('');
    hints.remember('t4', 0);
    expect(hints.take('t4', 'a')).toBe('');
  });
});
