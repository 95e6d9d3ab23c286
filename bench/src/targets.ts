import type { ResultRow } from './runner';

/** A goal from the benchmark issue, checked against the rows of the same run. */
export interface Target {
  readonly text: string;
  /** The row it reads. */
  readonly row: string;
  /** What it compares: the ratio, or Sluice's own figure. */
  readonly on: 'ratio' | 'sluice';
  readonly op: '>=' | '<=' | '<' | '==';
  readonly value: number;
}

export const TARGETS: readonly Target[] = [
  // The CPU a job costs: the measure that moves least with the machine.
  {
    text: 'Redis CPU per processed job at most 5 µs (concurrency 100)',
    row: 'throughput.redis-cpu',
    on: 'sluice',
    op: '<=',
    value: 5,
  },
  {
    text: 'Redis CPU per processed job at most 2 µs (batches of 100)',
    row: 'throughput.redis-cpu-batch',
    on: 'sluice',
    op: '<=',
    value: 2,
  },
  {
    text: 'worker CPU per processed job at most 5 µs (concurrency 100)',
    row: 'throughput.worker-cpu',
    on: 'sluice',
    op: '<=',
    value: 5,
  },
  {
    text: 'worker CPU per processed job at most 2 µs (batches of 100)',
    row: 'throughput.worker-cpu-batch',
    on: 'sluice',
    op: '<=',
    value: 2,
  },
  // The throughput that follows from it, against BullMQ in the same run.
  {
    text: 'processing at concurrency 100 at least 5x BullMQ',
    row: 'throughput.processing',
    on: 'ratio',
    op: '>=',
    value: 5,
  },
  {
    text: 'processing with batches of 100 at least 15x BullMQ (concurrency 100)',
    row: 'throughput.batch-processing',
    on: 'ratio',
    op: '>=',
    value: 15,
  },
  { text: 'enqueue at least 6x BullMQ', row: 'throughput.enqueue', on: 'ratio', op: '>=', value: 6 },
  {
    text: 'latency p50 at most half of BullMQ (light load)',
    row: 'latency.p50',
    on: 'ratio',
    op: '<=',
    value: 0.5,
  },
  {
    text: 'latency p99 at most half of BullMQ (light load)',
    row: 'latency.p99',
    on: 'ratio',
    op: '<=',
    value: 0.5,
  },
  {
    text: 'latency p50 at most half of BullMQ (busy)',
    row: 'latency.p50-busy',
    on: 'ratio',
    op: '<=',
    value: 0.5,
  },
  {
    text: 'latency p99 at most half of BullMQ (busy)',
    row: 'latency.p99-busy',
    on: 'ratio',
    op: '<=',
    value: 0.5,
  },
  // No regression.
  // (The 159 bytes of a small job are checked by packages/redis/test/memory.int.spec.ts: this
  // payload is larger.)
  {
    text: 'Redis bytes per queued job no more than BullMQ',
    row: 'backlog.bytesPerJob',
    on: 'ratio',
    op: '<=',
    value: 1,
  },
  {
    text: 'worker peak RSS at the big backlog within 20% of the small one',
    row: 'backlog.rssRatio',
    on: 'sluice',
    op: '<=',
    value: 1.2,
  },
  // The rate limit, by handler start.
  {
    text: 'no 1,000 ms window over the rate limit',
    row: 'rate-limit.windows-over',
    on: 'sluice',
    op: '==',
    value: 0,
  },
  {
    text: 'at least 98% of the allowed rate achieved',
    row: 'rate-limit.percent',
    on: 'sluice',
    op: '>=',
    value: 98,
  },
];

export interface TargetResult {
  readonly target: Target;
  /** `undefined` when the row was not run (`--only`) or has no value. */
  readonly measured: number | undefined;
  /** The row's unit (for Sluice's own figure). */
  readonly unit: string;
  readonly met: boolean | undefined;
}

export function checkTargets(rows: readonly ResultRow[]): TargetResult[] {
  return TARGETS.map((target) => {
    const row = rows.find((r) => r.id === target.row);
    const measured = row ? (target.on === 'ratio' ? (row.ratio ?? undefined) : row.sluice) : undefined;
    const unit = row?.unit ?? '';
    if (measured === undefined || !Number.isFinite(measured)) {
      return { target, measured: undefined, unit, met: undefined };
    }
    return { target, measured, unit, met: compare(measured, target.op, target.value) };
  });
}

function compare(a: number, op: Target['op'], b: number): boolean {
  switch (op) {
    case '>=':
      return a >= b;
    case '<=':
      return a <= b;
    case '<':
      return a < b;
    case '==':
      return a === b;
  }
}
