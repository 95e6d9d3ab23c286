import { InvalidArgumentError } from '../model/errors';

/** A parsed cron expression; see {@link parseCron}. */
export interface CronExpression {
  readonly source: string;
  /** Matches `date` (UTC), to the second. */
  matches(epochMs: number): boolean;
  /** The first matching time strictly after `afterMs` (UTC, whole seconds), or `undefined` within 5 years. */
  next(afterMs: number): number | undefined;
}

interface Field {
  readonly min: number;
  readonly max: number;
  readonly names?: readonly string[];
}

const SECOND: Field = { min: 0, max: 59 };
const MINUTE: Field = { min: 0, max: 59 };
const HOUR: Field = { min: 0, max: 23 };
const DAY: Field = { min: 1, max: 31 };
const MONTH: Field = {
  min: 1,
  max: 12,
  names: ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'],
};
const WEEKDAY: Field = { min: 0, max: 7, names: ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] };

const MACROS: Readonly<Record<string, string>> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

/**
 * Parses a cron expression, evaluated in UTC.
 *
 * Five fields — `minute hour day-of-month month day-of-week` — or six with a leading `second` field
 * (`*\/2 * * * * *` is every two seconds). Each field takes `*`, numbers, ranges `a-b`, steps `*\/n`
 * and `a-b/n`, lists `a,b,c`, and month and weekday names (`jan`, `mon`); weekday 7 is Sunday too.
 * When both day fields are restricted a day matching either runs (as in Vixie cron). The macros
 * `@yearly`, `@monthly`, `@weekly`, `@daily`, `@hourly` are accepted. Invalid input throws
 * {@link InvalidArgumentError} naming the field.
 *
 * ## Example
 * ```ts
 * const every15 = parseCron('*\/15 9-17 * * mon-fri');
 * every15.next(Date.parse('2026-01-05T08:59:00Z')); // 2026-01-05T09:00:00Z
 * ```
 */
export function parseCron(expression: string): CronExpression {
  const trimmed = expression.trim();
  const expanded = MACROS[trimmed.toLowerCase()] ?? trimmed;
  const parts = expanded.split(/\s+/);
  if (parts.length !== 5 && parts.length !== 6) {
    throw new InvalidArgumentError(`cron "${expression}" needs 5 or 6 fields, got ${parts.length}`);
  }
  const [sec, min, hour, dom, mon, dow] = parts.length === 6 ? parts : ['0', ...parts];
  const seconds = parseField(sec ?? '', SECOND, 'second', expression);
  const minutes = parseField(min ?? '', MINUTE, 'minute', expression);
  const hours = parseField(hour ?? '', HOUR, 'hour', expression);
  const days = parseField(dom ?? '', DAY, 'day of month', expression);
  const months = parseField(mon ?? '', MONTH, 'month', expression);
  const weekdays = parseField(dow ?? '', WEEKDAY, 'day of week', expression);
  if (weekdays.has(7)) weekdays.add(0);
  const domRestricted = (dom ?? '*') !== '*' && dom !== '?';
  const dowRestricted = (dow ?? '*') !== '*' && dow !== '?';

  const dayMatches = (d: Date): boolean => {
    const byDom = days.has(d.getUTCDate());
    const byDow = weekdays.has(d.getUTCDay());
    if (domRestricted && dowRestricted) return byDom || byDow;
    if (domRestricted) return byDom;
    if (dowRestricted) return byDow;
    return true;
  };

  const matches = (epochMs: number): boolean => {
    const d = new Date(epochMs);
    return (
      seconds.has(d.getUTCSeconds()) &&
      minutes.has(d.getUTCMinutes()) &&
      hours.has(d.getUTCHours()) &&
      months.has(d.getUTCMonth() + 1) &&
      dayMatches(d)
    );
  };

  const next = (afterMs: number): number | undefined => {
    // Start at the next whole second, then skip whole months, days, hours and minutes that cannot match.
    const d = new Date(Math.floor(afterMs / 1000) * 1000 + 1000);
    const limit = afterMs + 5 * 366 * 86_400_000;
    while (d.getTime() <= limit) {
      if (!months.has(d.getUTCMonth() + 1)) {
        d.setUTCMonth(d.getUTCMonth() + 1, 1);
        d.setUTCHours(0, 0, 0, 0);
        continue;
      }
      if (!dayMatches(d)) {
        d.setUTCDate(d.getUTCDate() + 1);
        d.setUTCHours(0, 0, 0, 0);
        continue;
      }
      if (!hours.has(d.getUTCHours())) {
        d.setUTCHours(d.getUTCHours() + 1, 0, 0, 0);
        continue;
      }
      if (!minutes.has(d.getUTCMinutes())) {
        d.setUTCMinutes(d.getUTCMinutes() + 1, 0, 0);
        continue;
      }
      if (!seconds.has(d.getUTCSeconds())) {
        d.setUTCSeconds(d.getUTCSeconds() + 1, 0);
        continue;
      }
      return d.getTime();
    }
    return undefined;
  };

  return { source: expression, matches, next };
}

function parseField(text: string, field: Field, label: string, expression: string): Set<number> {
  const fail = (why: string): never => {
    throw new InvalidArgumentError(`cron "${expression}": ${label} field "${text}" ${why}`);
  };
  const value = (token: string): number => {
    const lower = token.toLowerCase();
    const named = field.names?.indexOf(lower) ?? -1;
    if (named >= 0) return named + (field.min === 1 ? 1 : 0);
    if (!/^\d+$/.test(token)) fail(`has an invalid value "${token}"`);
    const n = Number(token);
    if (n < field.min || n > field.max) fail(`value ${n} is outside ${field.min}-${field.max}`);
    return n;
  };
  const out = new Set<number>();
  if (text === '') fail('is empty');
  for (const part of text.split(',')) {
    const [range = '', stepText] = part.split('/');
    let step = 1;
    if (stepText !== undefined) {
      if (!/^\d+$/.test(stepText) || Number(stepText) < 1) fail(`has an invalid step "${stepText}"`);
      step = Number(stepText);
    }
    let from: number;
    let to: number;
    if (range === '*' || range === '?') {
      from = field.min;
      to = field.max === 7 ? 6 : field.max;
    } else if (range.includes('-')) {
      const [a = '', b = ''] = range.split('-');
      from = value(a);
      to = value(b);
      if (from > to) fail(`has a backwards range ${range}`);
    } else {
      from = value(range);
      to = stepText === undefined ? from : field.max;
    }
    for (let n = from; n <= to; n += step) out.add(n);
  }
  return out;
}
