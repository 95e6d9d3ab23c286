/**
 * `npm run bench` — Sluice and BullMQ side by side on the same Redis.
 *
 * ```
 * npm run bench                       # full sizes (about ten minutes on two cores)
 * npm run bench -- --quick            # smaller sizes, under three minutes
 * npm run bench -- --smoke --out DIR  # tiny sizes: checks the machinery (the test suite runs this)
 * npm run bench -- --only latency,rate-limit --rounds 5
 * npm run bench -- --cpu-prof DIR     # V8 CPU profiles of every worker process
 * BENCH_REDIS_URL=redis://host:port npm run bench   # an existing server: never flushed
 * ```
 *
 * Writes `RESULTS.md` and `results/latest.json` (plus `results/diagnostics.json`: per-run Redis CPU and
 * command statistics) into `bench/`, or into `--out DIR`.
 */
import { join, resolve } from 'node:path';
import { load1, machineInfo } from './machine';
import { PROFILES, type Profile } from './profile';
import { RedisTarget } from './redis-target';
import { writeResults } from './report';
import { runScenarios } from './runner';
import type { Scenario } from './scenario';
import { backlogMemoryScenario } from './scenarios/backlog-memory';
import { batchApiScenario } from './scenarios/batch-api';
import { latencyScenario } from './scenarios/latency';
import { rateLimitScenario } from './scenarios/rate-limit';
import { throughputScenario } from './scenarios/throughput';
import { checkTargets } from './targets';
import { runAsProgram } from './cli';

export const SCENARIOS: readonly Scenario[] = [
  throughputScenario,
  latencyScenario,
  rateLimitScenario,
  backlogMemoryScenario,
  batchApiScenario,
];

export interface CliOptions {
  readonly profile: Profile;
  readonly outDir: string;
  readonly scenarios: readonly Scenario[];
  readonly cpuProfileDir?: string;
  readonly redisUrl?: string;
}

const USAGE =
  'usage: node bench/dist/run.js [--quick | --smoke] [--out DIR] [--only a,b] [--rounds N] [--cpu-prof DIR]';

export function parseArgs(argv: readonly string[], env: NodeJS.ProcessEnv): CliOptions {
  let profile: Profile = PROFILES.full;
  let outDir = join(__dirname, '..');
  let only: string[] | undefined;
  let rounds: number | undefined;
  let cpuProfileDir: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg ?? ''} needs a value\n${USAGE}`);
      return v;
    };
    switch (arg) {
      case '--quick':
        profile = PROFILES.quick;
        break;
      case '--smoke':
        profile = PROFILES.smoke;
        break;
      case '--out':
        outDir = resolve(value());
        break;
      case '--only':
        only = value().split(',');
        break;
      case '--rounds':
        rounds = Number(value());
        if (!Number.isInteger(rounds) || rounds < 1)
          throw new Error(`--rounds needs an integer ≥ 1\n${USAGE}`);
        break;
      case '--cpu-prof':
        cpuProfileDir = resolve(value());
        break;
      case undefined:
      default:
        throw new Error(`unknown argument ${String(arg)}\n${USAGE}`);
    }
  }
  const scenarios = only
    ? only.map((id) => {
        const s = SCENARIOS.find((x) => x.id === id);
        if (!s) throw new Error(`unknown scenario ${id}; known: ${SCENARIOS.map((x) => x.id).join(', ')}`);
        return s;
      })
    : SCENARIOS;
  const redisUrl = env['BENCH_REDIS_URL'];
  return {
    profile: rounds === undefined ? profile : { ...profile, rounds },
    outDir,
    scenarios,
    ...(cpuProfileDir === undefined ? {} : { cpuProfileDir }),
    ...(redisUrl ? { redisUrl } : {}),
  };
}

export async function main(argv: readonly string[]): Promise<void> {
  const options = parseArgs(argv, process.env);
  const log = (message: string): void => {
    process.stderr.write(`[bench] ${message}\n`);
  };
  const startedAt = new Date();
  const target = await RedisTarget.open(options.redisUrl);
  try {
    const machine = await machineInfo(target, options.profile, startedAt);
    log(
      `${options.profile.name} run, ${options.profile.rounds} round(s); Redis ${machine.redis} at ${target.url}` +
        (target.owned ? ' (own server)' : ' (BENCH_REDIS_URL: only the run prefixes are deleted)'),
    );
    const { rows, diagnostics } = await runScenarios({
      target,
      profile: options.profile,
      scenarios: options.scenarios,
      log,
      ...(options.cpuProfileDir === undefined ? {} : { cpuProfileDir: options.cpuProfileDir }),
    });
    const files = writeResults(
      options.outDir,
      rows,
      { ...machine, loadAfter: load1() },
      options.profile,
      options.scenarios,
      diagnostics,
    );
    for (const t of checkTargets(rows)) {
      if (t.met !== undefined) log(`target ${t.met ? 'met' : 'MISSED'}: ${t.target.text}`);
    }
    log(
      `wrote ${files.markdown} and ${files.json} in ${((Date.now() - startedAt.getTime()) / 1000).toFixed(0)} s`,
    );
  } finally {
    await target.close();
  }
}

runAsProgram(module, main);
