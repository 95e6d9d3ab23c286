import type { Profile } from './profile';
import type { RedisTarget } from './redis-target';
import type { System } from './worker-process';

/** The numbers one run of one system measured, by key. */
export type Measurement = Readonly<Record<string, number>>;

/** What a run gets from the runner. */
export interface RunContext {
  readonly target: RedisTarget;
  readonly profile: Profile;
  /** The run's own key prefix (both systems put every key under their prefix). */
  readonly prefix: string;
  /** The queue name (the same for both systems). */
  readonly queue: string;
  /** Deletes the run's keys (between the phases of a run). */
  reset(): Promise<void>;
  /** Progress, to stderr. */
  log(message: string): void;
  /** Where the run's worker processes write CPU profiles, when profiling. */
  readonly cpuProfileDir?: string;
}

/** One system (or one variant of it) in a scenario; every round runs each of them once, in order. */
export interface ScenarioRun {
  readonly id: string;
  readonly system: System;
  run(ctx: RunContext): Promise<Measurement>;
}

/** How a row combines the rounds: the median, or the worst round (for guarantees such as a limit). */
export type Aggregate = 'median' | 'max' | 'min';

/** One row of the results table: a measurement of one Sluice run against one of a BullMQ run. */
export interface MetricRow {
  /** Stable id, `<scenario>.<metric>`, used by the targets. */
  readonly id: string;
  readonly metric: string;
  readonly unit: string;
  readonly better: 'higher' | 'lower';
  readonly sluice: { readonly run: string; readonly key: string };
  readonly bullmq: { readonly run: string; readonly key: string };
  /** Default `median`. */
  readonly aggregate?: Aggregate;
  /** The value may legitimately be 0 (a count of violations). */
  readonly zeroOk?: boolean;
  /** Shown under the table. */
  readonly note?: string;
}

export interface Scenario {
  /** Short id used on the command line (`--only`) and in key prefixes. */
  readonly id: string;
  readonly title: string;
  /** Exactly what was compared, for RESULTS.md (generated from the profile's numbers). */
  describe(profile: Profile): string;
  readonly runs: readonly ScenarioRun[];
  readonly rows: readonly MetricRow[];
}
