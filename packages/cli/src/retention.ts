import type { Retention } from '@sluice/core';
import { CliError } from './io';

const UNITS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `500ms`, `30s`, `15m`, `36h`, `7d` (a bare number is ms) → ms. */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  const n = m?.[1] === undefined ? Number.NaN : Number(m[1]) * (UNITS[m[2] ?? 'ms'] ?? Number.NaN);
  if (!Number.isSafeInteger(n) || n < 1) {
    throw new CliError(`invalid age "${text}": expected a duration such as 500ms, 30s, 15m, 36h or 7d`, 2);
  }
  return n;
}

/**
 * A retention as the CLI spells it: `none`, `all`, `default` (→ `null`), a count (`1000`), an age
 * (`7d`), or both (`1000,7d`: the newest 1,000, none older than 7 days).
 */
export function parseRetention(text: string): Retention | null {
  const spec = text.trim().toLowerCase();
  if (spec === 'default') return null;
  if (spec === 'none' || spec === 'all') return { keep: spec };
  const [first, second, ...rest] = spec.split(',');
  const isCount = (s: string | undefined): boolean => s !== undefined && /^\d+$/.test(s);
  if (rest.length === 0 && first !== undefined) {
    if (second === undefined) {
      return isCount(first)
        ? { keep: 'count', count: Number(first) }
        : { keep: 'age', ageMs: parseDuration(first) };
    }
    if (isCount(first)) return { keep: 'count', count: Number(first), ageMs: parseDuration(second) };
  }
  throw new CliError(
    `invalid retention "${text}": expected none, all, default, a count (1000), an age (7d) or both (1000,7d)`,
    2,
  );
}

/** A retention in words, for the table output. */
export function describeRetention(retention: Retention | undefined, fallback: string): string {
  if (!retention) return `${fallback} (default)`;
  switch (retention.keep) {
    case 'none':
      return 'none (deleted when they finish)';
    case 'all':
      return 'all';
    case 'count':
      return `newest ${retention.count}${retention.ageMs === undefined ? '' : `, none older than ${duration(retention.ageMs)}`}`;
    case 'age':
      return `for ${duration(retention.ageMs)}`;
  }
}

function duration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit] ?? 1;
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
