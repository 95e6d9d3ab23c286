import fc from 'fast-check';
import { InvalidArgumentError, parseCron } from '@sluice/core';

const at = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('parseCron', () => {
  it('finds the next minute, hour, day and month boundaries (UTC)', () => {
    expect(iso(parseCron('* * * * *').next(at('2026-03-01T10:15:30Z')))).toBe('2026-03-01T10:16:00.000Z');
    expect(iso(parseCron('0 * * * *').next(at('2026-03-01T10:15:00Z')))).toBe('2026-03-01T11:00:00.000Z');
    expect(iso(parseCron('30 2 * * *').next(at('2026-03-01T10:15:00Z')))).toBe('2026-03-02T02:30:00.000Z');
    expect(iso(parseCron('0 0 1 * *').next(at('2026-12-15T00:00:00Z')))).toBe('2027-01-01T00:00:00.000Z');
    expect(iso(parseCron('0 0 29 2 *').next(at('2026-03-01T00:00:00Z')))).toBe('2028-02-29T00:00:00.000Z');
  });

  it('supports steps, ranges, lists and names', () => {
    const c = parseCron('*/15 9-17 * * mon-fri');
    expect(iso(c.next(at('2026-01-05T08:59:00Z')))).toBe('2026-01-05T09:00:00.000Z'); // a Monday
    expect(iso(c.next(at('2026-01-09T17:45:00Z')))).toBe('2026-01-12T09:00:00.000Z'); // Fri → Mon
    expect(iso(parseCron('0 0 * jan,jul sun').next(at('2026-02-01T00:00:00Z')))).toBe(
      '2026-07-05T00:00:00.000Z',
    );
    expect(iso(parseCron('5-20/5 * * * *').next(at('2026-01-01T00:15:00Z')))).toBe(
      '2026-01-01T00:20:00.000Z',
    );
    expect(iso(parseCron('0 0 * * 7').next(at('2026-01-01T00:00:00Z')))).toBe('2026-01-04T00:00:00.000Z'); // Sunday
  });

  it('runs when either day field matches if both are restricted', () => {
    const c = parseCron('0 0 13 * fri');
    // 2026-02-06 is a Friday, before the 13th.
    expect(iso(c.next(at('2026-02-01T00:00:00Z')))).toBe('2026-02-06T00:00:00.000Z');
    expect(iso(c.next(at('2026-02-12T00:00:00Z')))).toBe('2026-02-13T00:00:00.000Z');
  });

  it('takes a leading seconds field and macros', () => {
    expect(iso(parseCron('*/2 * * * * *').next(at('2026-01-01T00:00:01.500Z')))).toBe(
      '2026-01-01T00:00:02.000Z',
    );
    expect(iso(parseCron('@hourly').next(at('2026-01-01T00:30:00Z')))).toBe('2026-01-01T01:00:00.000Z');
    expect(iso(parseCron('@daily').next(at('2026-01-01T00:30:00Z')))).toBe('2026-01-02T00:00:00.000Z');
  });

  it('rejects bad expressions with the field named', () => {
    expect(() => parseCron('* * *')).toThrow(InvalidArgumentError);
    expect(() => parseCron('60 * * * *')).toThrow(/minute field "60"/);
    expect(() => parseCron('* 25 * * *')).toThrow(/hour/);
    expect(() => parseCron('* * * * 8')).toThrow(/day of week/);
    expect(() => parseCron('*/0 * * * *')).toThrow(/step/);
    expect(() => parseCron('5-1 * * * *')).toThrow(/backwards/);
    expect(() => parseCron('x * * * *')).toThrow(/invalid value/);
  });

  it('next() always returns a later, matching time (property)', () => {
    const exprs = ['*/7 * * * *', '0 */3 * * *', '15 10 * * 1-5', '0 0 1,15 * *', '*/10 * * * * *'];
    fc.assert(
      fc.property(fc.constantFrom(...exprs), fc.integer({ min: 0, max: 4_000_000_000_000 }), (e, t) => {
        const c = parseCron(e);
        const n = c.next(t);
        return n !== undefined && n > t && c.matches(n) && n % 1000 === 0;
      }),
    );
  });
});
