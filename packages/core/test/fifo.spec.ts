import { Fifo } from '../src/util/fifo';

const fifoOf = (items: string[]): Fifo<string> => {
  const f = new Fifo<string>();
  for (const i of items) f.push(i);
  return f;
};
const rest = (f: Fifo<string>): string[] => f.take(f.length);
const group = (item: string) => item[0];

describe('Fifo.takeLike', () => {
  it('takes the oldest item and the later ones with its key, up to count; the others keep their order', () => {
    const f = fifoOf(['a1', 'b1', 'a2', 'c1', 'a3', 'a4']);
    expect(f.takeLike(3, group)).toEqual(['a1', 'a2', 'a3']);
    expect(rest(f)).toEqual(['b1', 'c1', 'a4']);
  });

  it('takes a run of the same key at the head without reordering anything', () => {
    const f = fifoOf(['a1', 'a2', 'a3', 'b1', 'a4']);
    expect(f.takeLike(2, group)).toEqual(['a1', 'a2']);
    expect(f.takeLike(5, group)).toEqual(['a3', 'a4']);
    expect(rest(f)).toEqual(['b1']);
    expect(fifoOf(['x1', 'x2']).takeLike(5, () => undefined)).toEqual(['x1', 'x2']);
    expect(new Fifo<string>().takeLike(3, group)).toEqual([]);
  });
});
