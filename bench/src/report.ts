import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { MachineInfo } from './machine';
import type { Profile } from './profile';
import type { ResultRow, RunDiagnostics } from './runner';
import type { Scenario } from './scenario';
import { significant } from './stats';
import { checkTargets, type TargetResult } from './targets';

/** One entry of `results/latest.json`. */
export interface JsonScenario {
  readonly name: string;
  readonly metric: string;
  readonly unit: string;
  readonly sluice: number;
  readonly bullmq: number;
  readonly ratio: number | null;
  readonly better: 'higher' | 'lower';
  /** Row id (`<scenario>.<metric>`). */
  readonly id: string;
  /** How the rounds were combined: `median`, or the worst round. */
  readonly aggregate: string;
  readonly rounds: { readonly sluice: readonly number[]; readonly bullmq: readonly number[] };
}

export interface JsonResults {
  readonly scenarios: readonly JsonScenario[];
  readonly machine: MachineInfo;
  readonly targets: readonly { text: string; measured: number | null; met: boolean | null }[];
}

const round = (x: number): number => significant(x, 6);

export function toJson(rows: readonly ResultRow[], machine: MachineInfo): JsonResults {
  return {
    scenarios: rows.map((r) => ({
      name: r.name,
      metric: r.metric,
      unit: r.unit,
      sluice: round(r.sluice),
      bullmq: round(r.bullmq),
      ratio: r.ratio === null ? null : round(r.ratio),
      better: r.better,
      id: r.id,
      aggregate: r.aggregate,
      rounds: { sluice: r.rounds.sluice.map(round), bullmq: r.rounds.bullmq.map(round) },
    })),
    machine,
    targets: checkTargets(rows).map((t) => ({
      text: t.target.text,
      measured: t.measured === undefined ? null : round(t.measured),
      met: t.met ?? null,
    })),
  };
}

/** A number for the table, by unit. */
export function formatValue(value: number, unit: string): string {
  if (!Number.isFinite(value)) return 'n/a';
  switch (unit) {
    case 'jobs/s':
    case 'items/s':
      return value >= 100 ? Math.round(value).toLocaleString('en') : value.toPrecision(3);
    case 'bytes':
    case 'MiB':
    case '%':
      return value.toFixed(1);
    case 'x':
      return value.toFixed(2);
    case 'ms':
    case 'µs':
      return value >= 100 ? Math.round(value).toLocaleString('en') : value.toPrecision(3);
    default:
      return Number.isInteger(value) ? value.toLocaleString('en') : value.toFixed(1);
  }
}

function formatRatio(ratio: number | null): string {
  return ratio === null ? 'n/a' : `${ratio >= 10 ? ratio.toFixed(1) : ratio.toFixed(2)}x`;
}

/** A Markdown table laid out the way Prettier formats it (so `prettier --check` passes). */
export function markdownTable(
  header: readonly string[],
  rows: readonly (readonly string[])[],
  align: readonly ('left' | 'right')[],
): string {
  const widths = header.map((h, i) => Math.max(3, h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const cell = (text: string, i: number): string =>
    align[i] === 'right' ? text.padStart(widths[i] ?? 0) : text.padEnd(widths[i] ?? 0);
  const line = (cells: readonly string[]): string => `| ${cells.map((c, i) => cell(c, i)).join(' | ')} |`;
  const rule = widths.map((w, i) => (align[i] === 'right' ? `${'-'.repeat(w - 1)}:` : '-'.repeat(w)));
  return [line(header), `| ${rule.join(' | ')} |`, ...rows.map((r) => line(r))].join('\n');
}

function targetLine(t: TargetResult): readonly string[] {
  let shown: string;
  if (t.measured === undefined) shown = 'not run';
  else if (t.target.on === 'ratio') shown = `${formatRatio(t.measured)} of BullMQ`;
  else shown = `${formatValue(t.measured, t.unit)} ${t.unit}`;
  const result = t.met === undefined ? 'n/a' : t.met ? 'met' : 'MISSED';
  return [t.target.text, shown, result];
}

function commandLine(profile: Profile): string {
  switch (profile.name) {
    case 'full':
      return 'npm run bench';
    case 'quick':
      return 'npm run bench -- --quick';
    case 'smoke':
      return 'npm run bench -- --smoke';
  }
}

export function toMarkdown(
  rows: readonly ResultRow[],
  machine: MachineInfo,
  profile: Profile,
  scenarios: readonly Scenario[],
): string {
  const results = markdownTable(
    ['Scenario', 'Metric', 'Unit', 'Sluice', 'BullMQ', 'Ratio (Sluice / BullMQ)', 'Better'],
    rows.map((r) => [
      r.name,
      r.metric,
      r.unit,
      formatValue(r.sluice, r.unit),
      formatValue(r.bullmq, r.unit),
      formatRatio(r.ratio),
      r.better,
    ]),
    ['left', 'left', 'left', 'right', 'right', 'right', 'left'],
  );
  const targets = markdownTable(
    ['Target', 'Measured (Sluice)', 'Result'],
    checkTargets(rows).map(targetLine),
    ['left', 'right', 'left'],
  );
  const redis =
    machine.redisSource === 'spawned'
      ? `Redis ${machine.redis} (a private \`redis-server\` started by the benchmark, \`save ""\`, \`appendonly no\`)`
      : `Redis ${machine.redis} (from \`BENCH_REDIS_URL\`)`;
  const lines = [
    '# Benchmarks: Sluice and BullMQ side by side',
    '',
    `Generated by \`${commandLine(profile)}\` (${profile.name} sizes) on ${machine.date}. Do not edit by hand;`,
    'run the benchmark again instead.',
    '',
    `- Machine: ${machine.cpuModel}, ${machine.cpuCount} CPUs, ${machine.memoryGiB} GiB, ${machine.os}`,
    `- Node ${machine.node}, ${redis}`,
    `- Sluice ${machine.sluice} (checkout ${machine.sluiceCheckout}), BullMQ ${machine.bullmq}`,
    `- 1-minute load average ${machine.loadBefore} before the run, ${machine.loadAfter ?? 'n/a'} after it (other work on`,
    '  the machine shares the CPUs with both systems and moves every figure)',
    `- ${machine.rounds} round(s) per scenario; each round runs Sluice, then BullMQ, on the same server, each run`,
    '  under its own key prefix, deleted afterwards. The table shows the median round, or the worst round',
    '  where the metric says so. Every figure is measured in that run; ratios compare figures of the same run.',
    '',
    '## Results',
    '',
    results,
    '',
    '## Targets',
    '',
    targets,
    '',
    '## What was compared',
    '',
    'Both systems get the same job count, payload and handler, the same concurrency and the same Redis; workers',
    'run in worker processes forked from the compiled scripts in `bench/dist/workers` (one per system, so each',
    'process loads only its own library). BullMQ workers keep the newest 1,000 completed jobs',
    "(`removeOnComplete: { count: 1000 }` on the Worker), like Sluice's default retention, and keep failed jobs,",
    "like Sluice's dead-letter list; everything else is BullMQ's default.",
    '',
    ...scenarios.flatMap((s) => [`### ${s.title}`, '', s.describe(profile), '']),
  ];
  return `${lines.join('\n').trimEnd()}\n`;
}

export interface WrittenFiles {
  readonly markdown: string;
  readonly json: string;
  readonly diagnostics: string;
}

/** Writes `RESULTS.md`, `results/latest.json` and `results/diagnostics.json` under `dir`. */
export function writeResults(
  dir: string,
  rows: readonly ResultRow[],
  machine: MachineInfo,
  profile: Profile,
  scenarios: readonly Scenario[],
  diagnostics: readonly RunDiagnostics[],
): WrittenFiles {
  const resultsDir = join(dir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const files = {
    markdown: join(dir, 'RESULTS.md'),
    json: join(resultsDir, 'latest.json'),
    diagnostics: join(resultsDir, 'diagnostics.json'),
  };
  writeFileSync(files.markdown, toMarkdown(rows, machine, profile, scenarios));
  writeFileSync(files.json, `${JSON.stringify(toJson(rows, machine), null, 2)}\n`);
  writeFileSync(files.diagnostics, `${JSON.stringify(diagnostics, null, 2)}\n`);
  return files;
}
