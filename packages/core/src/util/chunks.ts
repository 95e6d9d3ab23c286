/** `items` in consecutive slices of at most `size` (the last may be shorter); none when empty. */
export function chunks<X>(items: readonly X[], size: number): X[][] {
  const out: X[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
