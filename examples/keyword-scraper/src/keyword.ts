/** One keyword of a list a user uploaded: one job. */
export interface KeywordJob {
  readonly user: string;
  readonly list: string;
  readonly keyword: string;
}

export const KEYWORD_QUEUE = 'keywords';

/**
 * The search provider's quota: 30 searches a minute (the test shortens the period with
 * `SEARCH_PERIOD_MS`). Sluice counts a search when Redis leases its job; the search itself leaves a
 * moment later, and that moment varies with the worker's load. The 250 ms margin keeps every window
 * the provider measures within the quota even when a search leaves up to 250 ms late, for 0.4% of
 * the rate at one minute.
 */
export const SEARCH_LIMIT = {
  allowed: Number(process.env['SEARCH_LIMIT'] ?? 30),
  periodMs: Number(process.env['SEARCH_PERIOD_MS'] ?? 60_000),
  marginMs: 250,
};
