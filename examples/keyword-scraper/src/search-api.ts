import { setTimeout as sleep } from 'node:timers/promises';

/** One organic result of a search. */
export interface SearchResult {
  readonly rank: number;
  readonly url: string;
}

/** A stand-in for a search API: 200–400 ms per query, ten results. */
export async function search(keyword: string, signal: AbortSignal): Promise<SearchResult[]> {
  await sleep(200 + Math.random() * 200, undefined, { signal });
  const slug = encodeURIComponent(keyword.replace(/\s+/g, '-'));
  return Array.from({ length: 10 }, (_, i) => ({ rank: i + 1, url: `https://example.com/${slug}/${i + 1}` }));
}
