import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { load1 } from './machine';
import type { Profile } from './profile';
import type { RedisCounters, RedisTarget } from './redis-target';
import type { Aggregate, Measurement, MetricRow, Scenario } from './scenario';
import { throughput } from './scenarios/throughput';
import { median } from './stats';

/** One row of the results: the aggregate of every round, for both systems. */
export interface ResultRow {
  readonly id: string;
  /** The scenario's title. */
  readonly name: string;
  readonly metric: string;
  readonly unit: string;
  readonly sluice: number;
  readonly bullmq: number;
  /** `sluice / bullmq`; `null` when it is undefined (a zero on either side). */
  readonly ratio: number | null;
  readonly better: 'higher' | 'lower';
  readonly aggregate: Aggregate;
  readonly zeroOk: boolean;
  /** Every round's value, in order. */
  readonly rounds: { readonly sluice: readonly number[]; readonly bullmq: readonly number[] };
}

/** Details of one run, for profiling (`results/diagnostics.json`). */
export interface RunDiagnostics {
  readonly scenario: string;
  readonly run: string;
  readonly round: number;
  readonly prefix: string;
  readonly measurement: Measurement;
  readonly wallMs: number;
  /** The machine's 1-minute load average at the end of the run. */
  readonly load1: number;
  /** Redis CPU seconds during the run. */
  readonly redisCpuSeconds: number;
  /** The commands that took the most Redis time during the run (`INFO commandstats` difference). */
  readonly redisCommands: readonly { command: string; calls: number; usec: number; usecPerCall: number }[];
}

export interface RunnerOptions {
  readonly target: RedisTarget;
  readonly profile: Profile;
  readonly scenarios: readonly Scenario[];
  readonly log: (message: string) => void;
  /** Write CPU profiles of every worker process under this directory. */
  readonly cpuProfileDir?: string;
}

export interface RunnerResult {
  readonly rows: readonly ResultRow[];
  readonly diagnostics: readonly RunDiagnostics[];
}

/**
 * Runs every scenario for the profile's rounds, each round running the scenario's systems in turn
 * (Sluice, BullMQ, Sluice, BullMQ, …), each run under a key prefix of its own that is deleted
 * afterwards, and aggregates the rounds per row.
 */
export async function runScenarios(options: RunnerOptions): Promise<RunnerResult> {
  const { target, profile, log } = options;
  const runId = randomBytes(3).toString('hex');
  const rows: ResultRow[] = [];
  const diagnostics: RunDiagnostics[] = [];
  await warmUp(target, profile, runId, log);
  for (const scenario of options.scenarios) {
    const measured = new Map<string, Measurement[]>();
    for (let round = 1; round <= profile.rounds; round++) {
      for (const run of scenario.runs) {
        const prefix = `sluice-bench-${runId}-${scenario.id}-${run.id}-${round}`;
        const label = `${scenario.id} round ${round}/${profile.rounds} ${run.id}`;
        await target.reset([prefix]);
        const before = await target.counters();
        const started = Date.now();
        let measurement: Measurement;
        let after: RedisCounters;
        try {
          measurement = await run.run({
            target,
            profile,
            prefix,
            queue: 'bench',
            reset: () => target.reset([prefix]),
            log,
            ...(options.cpuProfileDir === undefined
              ? {}
              : { cpuProfileDir: join(options.cpuProfileDir, `${scenario.id}-${run.id}-${round}`) }),
          });
          after = await target.counters();
        } finally {
          await target.reset([prefix]);
        }
        diagnostics.push({
          scenario: scenario.id,
          run: run.id,
          round,
          prefix,
          measurement,
          wallMs: Date.now() - started,
          load1: load1(),
          redisCpuSeconds: after.cpuSeconds - before.cpuSeconds,
          redisCommands: commandDelta(before, after),
        });
        log(`${label}: ${formatMeasurement(measurement)}`);
        const list = measured.get(run.id) ?? [];
        list.push(measurement);
        measured.set(run.id, list);
      }
    }
    for (const row of scenario.rows) rows.push(aggregateRow(scenario, row, measured));
  }
  return { rows, diagnostics };
}

/**
 * One small, unmeasured throughput run of each system before the first round, so that whichever runs
 * first does not pay alone for a cold server (allocator growth, script cache) and cold file caches.
 * Every measured run still forks fresh worker processes; the throughput runs warm theirs up first
 * (`Profile.throughput.warmupJobs`, the same for both systems; the batched run `batchWarmupJobs`).
 */
async function warmUp(
  target: RedisTarget,
  profile: Profile,
  runId: string,
  log: (m: string) => void,
): Promise<void> {
  const small: Profile = {
    ...profile,
    throughput: {
      ...profile.throughput,
      jobs: Math.min(2000, profile.throughput.jobs),
      warmupJobs: 0,
      batchWarmupJobs: 0,
    },
  };
  for (const system of ['sluice', 'bullmq'] as const) {
    const prefix = `sluice-bench-${runId}-warmup-${system}`;
    await target.reset([prefix]);
    try {
      await throughput(
        { target, profile: small, prefix, queue: 'bench', reset: () => target.reset([prefix]), log },
        system,
        { kind: 'single' },
        small.throughput.concurrency,
        small.throughput.warmupJobs,
      );
    } finally {
      await target.reset([prefix]);
    }
  }
  log('warm-up done (not measured)');
}

function aggregateRow(scenario: Scenario, row: MetricRow, measured: Map<string, Measurement[]>): ResultRow {
  const aggregate = row.aggregate ?? 'median';
  const values = (ref: { run: string; key: string }): number[] =>
    (measured.get(ref.run) ?? []).map((m) => m[ref.key] ?? NaN);
  const sluiceRounds = values(row.sluice);
  const bullmqRounds = values(row.bullmq);
  const sluice = combine(sluiceRounds, aggregate);
  const bullmq = combine(bullmqRounds, aggregate);
  const ratio = sluice !== 0 && bullmq !== 0 && Number.isFinite(sluice / bullmq) ? sluice / bullmq : null;
  return {
    id: row.id,
    name: scenario.title,
    metric: row.metric,
    unit: row.unit,
    sluice,
    bullmq,
    ratio,
    better: row.better,
    aggregate,
    zeroOk: row.zeroOk ?? false,
    rounds: { sluice: sluiceRounds, bullmq: bullmqRounds },
  };
}

function combine(values: readonly number[], aggregate: Aggregate): number {
  switch (aggregate) {
    case 'median':
      return median(values);
    case 'max':
      return values.reduce((a, b) => Math.max(a, b), -Infinity);
    case 'min':
      return values.reduce((a, b) => Math.min(a, b), Infinity);
  }
}

function commandDelta(before: RedisCounters, after: RedisCounters): RunDiagnostics['redisCommands'] {
  const out: { command: string; calls: number; usec: number; usecPerCall: number }[] = [];
  for (const [command, a] of Object.entries(after.commands)) {
    const b = before.commands[command];
    // After CONFIG RESETSTAT (a private server) the counters start again from zero.
    const calls = b && a.calls >= b.calls ? a.calls - b.calls : a.calls;
    const usec = b && a.usec >= b.usec ? a.usec - b.usec : a.usec;
    if (calls > 0) out.push({ command, calls, usec, usecPerCall: usec / calls });
  }
  return out.sort((x, y) => y.usec - x.usec).slice(0, 10);
}

function formatMeasurement(m: Measurement): string {
  return Object.entries(m)
    .map(([k, v]) => `${k} ${Number.isInteger(v) ? v : v.toPrecision(4)}`)
    .join(', ');
}
