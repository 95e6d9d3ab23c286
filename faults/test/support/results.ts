import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import type { Reconciliation } from './reconcile';

/** The scenarios of `RESULTS.md`, in the order they are listed. */
export const SCENARIOS = {
  'worker-crashes': 'Worker crashes (SIGKILLs spread over the drain, restarted)',
  'worker-crashes-cluster': 'Worker crashes on a 3-master Redis Cluster',
  'graceful-drain': 'Graceful drain (SIGTERM within the timeout)',
  'drain-timeout': 'Drain past the timeout (handlers aborted, jobs recovered)',
  'redis-restart-always': 'Redis SIGKILL + restart, appendfsync always',
  'redis-restart-everysec': 'Redis SIGKILL + restart, appendfsync everysec',
  'stalled-redis': 'Stalled Redis (SIGSTOP longer than the lease)',
  'poison-and-bad-data': 'Poison jobs and bad data',
  load: 'Load (one million jobs, four processes)',
  'security-acl': 'ACL user and password',
  'security-tls': 'TLS with an ACL user',
  fuzz: 'Fuzz of Queue.add and the schema',
} as const;

export type ScenarioId = keyof typeof SCENARIOS;

export interface ScenarioResult {
  readonly scenario: ScenarioId;
  readonly enqueued: number;
  readonly completed: number;
  readonly dead: number;
  readonly lost: number;
  readonly duplicated: number;
  /** Measured figures worth quoting (peak RSS, CPU during a stall, …). */
  readonly notes: readonly string[];
}

export function resultOf(
  scenario: ScenarioId,
  r: Pick<Reconciliation, 'enqueued' | 'completed' | 'dead' | 'lost' | 'duplicated'>,
  notes: readonly string[] = [],
): ScenarioResult {
  return {
    scenario,
    enqueued: r.enqueued,
    completed: r.completed,
    dead: r.dead,
    lost: r.lost,
    duplicated: r.duplicated,
    notes,
  };
}

/** The one summary line of a scenario. */
export function summaryLine(result: ScenarioResult, label: string): string {
  const figures = [result.enqueued, result.completed, result.dead, result.lost, result.duplicated].join(
    ' / ',
  );
  return `[faults] ${label}: jobs enqueued / completed / dead / lost / duplicated = ${figures}`;
}

/**
 * Prints the scenario's summary line (and its measurements), and with `record` writes the same figures
 * to `faults/RESULTS.md` (the full suite does; the CI subset does not).
 */
export function report(
  result: ScenarioResult,
  options: { readonly record: boolean; readonly label?: string },
): void {
  const label = options.label ?? SCENARIOS[result.scenario];
  const lines = [summaryLine(result, label), ...result.notes.map((n) => `[faults]   ${n}`)];
  process.stdout.write(`${lines.join('\n')}\n`);
  if (options.record) recordResult(result);
}

const RESULTS_FILE = join(__dirname, '..', '..', 'RESULTS.md');

function machine(): string {
  let redis = 'redis-server (version unknown)';
  try {
    const version = /v=(\S+)/.exec(execFileSync('redis-server', ['--version'], { encoding: 'utf8' }))?.[1];
    if (version) redis = `redis-server ${version}`;
  } catch {
    // no redis-server on PATH: say the version is unknown
  }
  const cpu = cpus();
  return (
    `${String(cpu.length)} × ${cpu[0]?.model.trim() ?? 'CPU'}, ${String(Math.round(totalmem() / 2 ** 30))} GiB, ` +
    `Node ${process.version}, ${redis}, ${process.platform}`
  );
}

const INTRO = [
  '# Fault suite results',
  '',
  'Written by the full fault suite (`npm run test:faults`, `faults/test/*.fault.ts`); each scenario',
  'rewrites its own row and details when it runs. Every scenario starts its own `redis-server` and real',
  'worker processes on loopback, injects its fault, then reconciles the final state of every job in',
  'Redis with the ledger each process kept (one line per handler start and per acknowledged outcome).',
  '"Lost" counts enqueued jobs that are neither completed nor in the dead-letter queue; "duplicated"',
  'counts extra handler executions of completed jobs (delivery is at least once).',
];

interface Recorded {
  readonly figures: readonly string[];
  readonly notes: readonly string[];
}

/** The rows and details already in `RESULTS.md`, by scenario. */
function readRecorded(): Map<ScenarioId, Recorded> {
  const recorded = new Map<ScenarioId, Recorded>();
  if (!existsSync(RESULTS_FILE)) return recorded;
  const lines = readFileSync(RESULTS_FILE, 'utf8').split('\n');
  const ids = Object.keys(SCENARIOS) as ScenarioId[];
  for (const id of ids) {
    const title = SCENARIOS[id];
    const row = lines.find((l) => l.startsWith(`| ${title} `));
    if (!row) continue;
    const figures = row
      .split('|')
      .slice(2, 7)
      .map((c) => c.trim());
    const heading = lines.indexOf(`### ${title}`);
    const notes: string[] = [];
    if (heading >= 0) {
      for (const line of lines.slice(heading + 1)) {
        if (line.startsWith('#') || line.startsWith('<!--')) break;
        if (line.startsWith('- ')) notes.push(line.slice(2));
      }
    }
    recorded.set(id, { figures, notes });
  }
  return recorded;
}

/** Replaces the scenario's row and details in `faults/RESULTS.md`, keeping the others. */
function recordResult(result: ScenarioResult): void {
  const recorded = readRecorded();
  recorded.set(result.scenario, {
    figures: [result.enqueued, result.completed, result.dead, result.lost, result.duplicated].map(String),
    // The rows come from different runs (each scenario rewrites its own): each names its machine.
    notes: [...result.notes, `machine: ${machine()}`],
  });
  const ids = (Object.keys(SCENARIOS) as ScenarioId[]).filter((id) => recorded.has(id));
  const text = [
    ...INTRO,
    '',
    'The machine of each run is the last line of its details.',
    '',
    '| Scenario | Jobs enqueued | Completed | Dead | Lost | Duplicated |',
    '| --- | --: | --: | --: | --: | --: |',
    ...ids.map((id) => `| ${SCENARIOS[id]} | ${recorded.get(id)?.figures.join(' | ') ?? ''} |`),
    '',
    '## Details',
    ...ids.flatMap((id) => [
      '',
      `### ${SCENARIOS[id]}`,
      '',
      ...(recorded.get(id)?.notes ?? []).map((n) => `- ${n}`),
    ]),
    '',
  ].join('\n');
  writeFileSync(RESULTS_FILE, text);
  // Prettier checks the repository (`npm run lint`): write the file as it would.
  execFileSync(process.execPath, [require.resolve('prettier/bin/prettier.cjs'), '--write', RESULTS_FILE], {
    stdio: 'ignore',
  });
}
