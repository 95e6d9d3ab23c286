import type { ErrorInfo } from './errors';
import { InvalidArgumentError } from './errors';
import type { Job } from './job';

/** Returns the delay in ms before retry number `attempt` (the attempt that just failed, from 1). */
export type BackoffPolicy = (attempt: number, error: ErrorInfo, job: Job) => number;

export interface ExponentialBackoffConfig {
  /** Delay ceiling after the first failure. Default `1000`. */
  readonly baseMs?: number;
  /** Multiplier per attempt. Default `2`. */
  readonly factor?: number;
  /** Cap on any delay. Default one hour. */
  readonly maxMs?: number;
  /**
   * `'full'` (default): a uniform random delay in `[0, ceiling]`, which spreads retries of jobs that
   * failed together (AWS's "full jitter"). `'equal'`: half fixed, half random. `'none'`: the ceiling.
   */
  readonly jitter?: 'full' | 'equal' | 'none';
  /** Source of randomness in `[0, 1)`. Default `Math.random`; inject one for reproducible tests. */
  readonly random?: () => number;
}

/**
 * Exponential backoff: the ceiling after attempt `a` is `min(maxMs, baseMs × factor^(a-1))`, with full
 * jitter by default.
 *
 * ## Example
 * ```ts
 * definePipeline({ queue: 'emails', backoff: exponential({ baseMs: 500, maxMs: 60_000 }), handler });
 * ```
 */
export function exponential(config: ExponentialBackoffConfig = {}): BackoffPolicy {
  const baseMs = config.baseMs ?? 1000;
  const factor = config.factor ?? 2;
  const maxMs = config.maxMs ?? 3_600_000;
  const jitter = config.jitter ?? 'full';
  const random = config.random ?? Math.random;
  if (!(baseMs >= 0) || !(factor >= 1) || !(maxMs >= 0)) {
    throw new InvalidArgumentError('exponential backoff needs baseMs ≥ 0, factor ≥ 1 and maxMs ≥ 0');
  }
  return (attempt) => {
    const ceiling = Math.min(maxMs, baseMs * Math.pow(factor, Math.max(0, attempt - 1)));
    return Math.round(applyJitter(ceiling, jitter, random));
  };
}

/**
 * The same delay after every failure, optionally jittered.
 *
 * ## Example
 * ```ts
 * definePipeline({ queue: 'webhooks', backoff: fixed(30_000), handler });
 * ```
 */
export function fixed(
  delayMs: number,
  options: { readonly jitter?: 'full' | 'equal' | 'none'; readonly random?: () => number } = {},
): BackoffPolicy {
  if (!(delayMs >= 0)) throw new InvalidArgumentError(`fixed backoff needs delayMs ≥ 0, got ${delayMs}`);
  const jitter = options.jitter ?? 'none';
  const random = options.random ?? Math.random;
  return () => Math.round(applyJitter(delayMs, jitter, random));
}

function applyJitter(ceiling: number, jitter: 'full' | 'equal' | 'none', random: () => number): number {
  switch (jitter) {
    case 'full':
      return random() * ceiling;
    case 'equal':
      return ceiling / 2 + (random() * ceiling) / 2;
    case 'none':
      return ceiling;
  }
}
