import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { SlotMap, Slots } from '../src/util/slot-map';

describe('SlotMap', () => {
  it('gets, sets, deletes and iterates as a Map does, in insertion order', () => {
    const m = new SlotMap<string, { n: number }>();
    const ref = new Map<string, { n: number }>();
    const both = (f: (x: SlotMap<string, { n: number }> | Map<string, { n: number }>) => void): void => {
      f(m);
      f(ref);
    };
    for (let i = 0; i < 50; i++) both((x) => x.set(`k${i}`, { n: i }));
    for (let i = 0; i < 50; i += 3) both((x) => x.delete(`k${i}`));
    both((x) => x.set('k1', { n: 100 })); // an existing key keeps its place
    for (let i = 50; i < 70; i++) both((x) => x.set(`k${i}`, { n: i })); // reuse freed slots
    both((x) => x.set('k0', { n: -1 })); // a deleted key comes back last
    expect(m.size).toBe(ref.size);
    expect([...m.keys()]).toEqual([...ref.keys()]);
    expect([...m.values()]).toEqual([...ref.values()]);
    expect([...m.entries()]).toEqual([...ref.entries()]);
    expect([...m]).toEqual([...ref]);
    for (const k of ['k0', 'k1', 'k3', 'k4', 'k69', 'nope']) {
      expect(m.get(k)).toEqual(ref.get(k));
      expect(m.has(k)).toBe(ref.has(k));
    }
    expect(m.delete('nope')).toBe(false);
    expect(m.delete('k4')).toBe(true);
    expect(m.get('k4')).toBeUndefined();
    m.clear();
    expect(m.size).toBe(0);
    expect([...m]).toEqual([]);
    m.set('a', { n: 1 });
    expect([...m]).toEqual([['a', { n: 1 }]]);
  });

  it('stays a Map through a long churn (its index made anew as deleted keys pile up)', () => {
    const m = new SlotMap<string, number>();
    const ref = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      m.set(`j${i}`, i);
      ref.set(`j${i}`, i);
      if (i >= 100) {
        // Mostly the oldest, sometimes one from the middle.
        const gone = i % 7 === 0 ? `j${i - 50}` : `j${i - 100}`;
        expect(m.delete(gone)).toBe(ref.delete(gone));
      }
      if (i % 997 === 0) {
        expect([...m]).toEqual([...ref]);
        expect(m.size).toBe(ref.size);
      }
    }
    expect([...m]).toEqual([...ref]);
    expect(m.get('j19999')).toBe(19_999);
    expect(m.has('j0')).toBe(false);
  });
});

describe('Slots', () => {
  it('answers a slot per value, reuses freed ones and lists what it holds', () => {
    const s = new Slots<string>();
    const a = s.add('a');
    const b = s.add('b');
    const c = s.add('c');
    expect(new Set([a, b, c]).size).toBe(3);
    s.remove(b);
    s.remove(b); // twice: no effect
    expect(s.size).toBe(2);
    expect(s.values().sort()).toEqual(['a', 'c']);
    const d = s.add('d');
    expect(d).toBe(b);
    expect(s.values().sort()).toEqual(['a', 'c', 'd']);
    // A copy: removing while going through it is safe.
    for (const v of s.values()) if (v !== 'a') s.remove(v === 'c' ? c : d);
    expect(s.values()).toEqual(['a']);
    s.clear();
    expect(s.size).toBe(0);
    expect(s.values()).toEqual([]);
  });

  it('reads and replaces a slot, and walks every slot up to its end', () => {
    const s = new Slots<string>();
    const a = s.add('a');
    const b = s.add('b');
    s.remove(a);
    expect([s.get(a), s.get(b), s.end]).toEqual([undefined, 'b', 2]);
    s.set(b, 'B');
    s.set(a, 'x'); // an empty slot is not filled by set
    expect([s.get(a), s.get(b), s.size]).toEqual([undefined, 'B', 1]);
    const walked: string[] = [];
    for (let slot = 0; slot < s.end; slot++) walked.push(s.get(slot) ?? '-');
    expect(walked).toEqual(['-', 'B']);
  });
});

/**
 * What SlotMap is for: a map of running jobs that churns by a job each (set when leased, deleted
 * when settled) must not make the young collections promote its values. Each child process runs
 * the same churn (300,000 jobs of about 1 KB, 1,500 held at a time) after one full collection, and
 * counts the full collections it then needed: promoted garbage fills the old generation and calls
 * for them. A count of collections, not a time: the same on a slow or a busy machine.
 */
describe('SlotMap under the collector', () => {
  const churn = (kind: 'Map' | 'SlotMap'): number => {
    const script = `
      const { PerformanceObserver, constants } = require('node:perf_hooks');
      const { SlotMap } = require(${JSON.stringify(join(__dirname, '../dist/util/slot-map.js'))});
      const held = ${kind === 'Map' ? 'new Map()' : 'new SlotMap()'};
      let major = 0;
      new PerformanceObserver((list) => {
        for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MAJOR) major++;
      }).observe({ entryTypes: ['gc'] });
      const job = (i) => ({ id: String(i), data: JSON.parse('{"to":"user' + i + '@example.com"}'),
        parts: Array.from({ length: 12 }, (_, k) => ({ k, v: 'x' + i, n: i * 1.5 })) });
      const window = [];
      let made = 0;
      global.gc();
      setTimeout(() => { major = 0; step(); }, 10);
      function step() {
        for (let j = 0; j < 100; j++) { const x = job(made++); window.push(x.id); held.set(x.id, x); }
        while (window.length > 1500) held.delete(window.shift());
        if (made < 300000) setImmediate(step);
        else setTimeout(() => process.stdout.write(String(major)), 10);
      }`;
    return Number(execFileSync(process.execPath, ['--expose-gc', '-e', script], { encoding: 'utf8' }));
  };

  it('needs far fewer full collections than a Map of the same churn', () => {
    const withMap = churn('Map');
    // The better of two: one run in about thirty needed as many as a Map's.
    const withSlots = Math.min(churn('SlotMap'), churn('SlotMap'));
    expect(withMap).toBeGreaterThanOrEqual(4);
    expect(withSlots * 3).toBeLessThanOrEqual(withMap);
  }, 60_000);
});
