import { InvalidArgumentError } from '../model/errors';
import { assertRetention } from '../model/validation';
import { parseCron } from '../runtime/cron';
import type { QueueConfig, QueueConfigPatch, ScheduleSpec } from './store';

const PATCH_FIELDS = new Set(['schema', 'retention', 'deadRetention', 'schedules']);

/** Checks a configuration patch before a store applies it: a bad patch changes nothing. */
export function assertConfigPatch(input: unknown): asserts input is QueueConfigPatch {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new InvalidArgumentError('a queue configuration patch must be an object');
  }
  const patch = input as Record<string, unknown>;
  for (const key of Object.keys(patch)) {
    if (!PATCH_FIELDS.has(key)) {
      throw new InvalidArgumentError(
        `unknown queue configuration field "${key}" (known: ${[...PATCH_FIELDS].join(', ')})`,
      );
    }
  }
  const { schema, retention, deadRetention, schedules } = patch;
  if (schema !== undefined && schema !== null && (typeof schema !== 'object' || Array.isArray(schema))) {
    throw new InvalidArgumentError('schema must be a JSON schema object (or null to remove it)');
  }
  if (retention !== undefined && retention !== null) assertRetention(retention, 'retention');
  if (deadRetention !== undefined && deadRetention !== null) assertRetention(deadRetention, 'deadRetention');
  if (schedules === undefined) return;
  if (typeof schedules !== 'object' || schedules === null || Array.isArray(schedules)) {
    throw new InvalidArgumentError('schedules must be an object of schedule name → spec (or null to remove)');
  }
  for (const [name, spec] of Object.entries(schedules as Record<string, unknown>)) {
    if (!name || name.length > 200) {
      throw new InvalidArgumentError('a schedule needs a name of 1-200 characters');
    }
    if (spec === null) continue;
    const cron = typeof spec === 'object' ? (spec as { cron?: unknown }).cron : undefined;
    if (typeof cron !== 'string') {
      throw new InvalidArgumentError(`schedule "${name}" needs a cron expression`);
    }
    parseCron(cron); // throws on a bad expression
  }
}

/**
 * The configuration after `patch`: each field given replaces the stored one (`null` removes it),
 * each schedule given replaces the one of that name (`null` removes it), everything else is kept.
 * Both stores apply patches with this function, atomically, so concurrent patches of different
 * fields (or different schedules) never lose each other.
 */
export function applyConfigPatch(config: QueueConfig, patch: QueueConfigPatch): QueueConfig {
  const fields = ['schema', 'retention', 'deadRetention'] as const;
  const out: Record<string, unknown> = Object.fromEntries(
    Object.entries(config).filter(([key]) => !fields.some((f) => f === key && patch[f] === null)),
  );
  for (const field of fields) {
    const value = patch[field];
    if (value !== undefined && value !== null) out[field] = value;
  }
  if (patch.schedules !== undefined) {
    const changes = patch.schedules;
    const schedules = Object.fromEntries(
      Object.entries({ ...config.schedules, ...changes }).filter(
        (entry): entry is [string, ScheduleSpec] => entry[1] !== null,
      ),
    );
    out['schedules'] = schedules;
  }
  // A JSON round trip: what is stored is what every process reads back.
  return JSON.parse(JSON.stringify(out)) as QueueConfig;
}
