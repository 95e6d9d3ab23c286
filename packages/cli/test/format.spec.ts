import { groupRows } from '../src/format';

describe('groupRows', () => {
  it("shows each group's weight and, while its rate limit holds it back, for how much longer", () => {
    const rows = groupRows(
      [
        { group: 'gold', ready: 4, active: 1, paused: false, weight: 3, limitedUntil: 10_250 },
        { group: 'plain', ready: 2, active: 0, paused: true },
        { group: 'late', ready: 1, active: 0, paused: false, limitedUntil: 9_000 },
      ],
      10_000,
    );
    expect(rows[0]).toMatch(/^GROUP\s+READY\s+ACTIVE\s+PAUSED\s+WEIGHT\s+LIMITED$/);
    expect(rows.slice(2).map((r) => r.trimEnd().split(/\s+/))).toEqual([
      ['gold', '4', '1', 'no', '3', '250', 'ms'],
      ['plain', '2', '0', 'yes', '1'],
      ['late', '1', '0', 'no', '1', '0', 'ms'],
    ]);
  });
});
