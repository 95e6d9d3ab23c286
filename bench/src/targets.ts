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
  {
    text: 'processing throughput at concurrency 100 at least 3x BullMQ',
    row: 'throughput.processing',
    on: 'ratio',
    op: '>=',
    value: 3,
  },
  {
    text: 'processing throughput with batch 100 at least 10x BullMQ (concurrency 100)',
    row: 'throughput.batch-processing',
    on: 'ratio',
    op: '>=',
    value: 10,
  },
  { text: 'enqueue at least 2x BullMQ', row: 'throughput.enqueue', on: 'ratio', op: '>=', value: 2 },
  { text: 'latency p99 no higher than BullMQ', row: 'latency.p99', on: 'ratio', op: '<=', value: 1 },
  { text: 'latency p50 under 2 ms on an idle worker', row: 'latency.p50', on: 'sluice', op: '<', value: 2 },
  {
    text: 'no 1,000 ms window over the rate limit',
    row: 'rate-limit.windows-over',
    on: 'sluice',
    op: '==',
    value: 0,
  },
  {
    text: 'at least 99% of the allowed rate achieved',
    row: 'rate-limit.percent',
    on: 'sluice',
    op: '>=',
    value: 99,
  },
  {
    text: 'worker peak RSS at the big backlog within 20% of the small one',
    row: 'backlog.rssRatio',
    on: 'sluice',
    op: '<=',
    value: 1.2,
  },
  {
    text: 'Redis bytes per queued job no more than BullMQ',
    row: 'backlog.bytesPerJob',
    on: 'ratio',
    op: '<=',
    value: 1,
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
