import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { arch, cpus, loadavg, release, totalmem, type } from 'node:os';
import type { Profile } from './profile';
import type { RedisTarget } from './redis-target';

/** Where and how a benchmark ran; written with its results. */
export interface MachineInfo {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly memoryGiB: number;
  readonly os: string;
  readonly node: string;
  readonly redis: string;
  /** `spawned` (its own redis-server) or `BENCH_REDIS_URL`. */
  readonly redisSource: 'spawned' | 'BENCH_REDIS_URL';
  readonly bullmq: string;
  readonly sluice: string;
  /**
   * The checkout the Sluice packages were built from: `<short commit>`, plus `+changes` when
   * `packages/` had uncommitted changes; `unknown` outside a git checkout.
   */
  readonly sluiceCheckout: string;
  /** ISO date and time the run started. */
  readonly date: string;
  readonly mode: Profile['name'];
  readonly rounds: number;
  /**
   * The 1-minute load average when the run started and when it ended. Anything else running on the
   * machine shows here, and moves every figure (both systems share the CPUs with it).
   */
  readonly loadBefore: number;
  readonly loadAfter?: number;
}

/** The 1-minute load average, two decimals. */
export function load1(): number {
  return Math.round((loadavg()[0] ?? 0) * 100) / 100;
}

function packageVersion(name: string): string {
  try {
    const json = JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')) as {
      version?: string;
    };
    return json.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

function checkout(): string {
  const root = join(__dirname, '..', '..');
  try {
    const git = (...args: string[]): string =>
      execFileSync('git', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const commit = git('rev-parse', '--short', 'HEAD');
    return git('status', '--porcelain', '--', 'packages') === '' ? commit : `${commit}+changes`;
  } catch {
    return 'unknown';
  }
}

export async function machineInfo(
  target: RedisTarget,
  profile: Profile,
  startedAt: Date,
): Promise<MachineInfo> {
  const cores = cpus();
  return {
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    cpuCount: cores.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    os: `${type()} ${release()} ${arch()}`,
    node: process.version,
    redis: await target.version(),
    redisSource: target.owned ? 'spawned' : 'BENCH_REDIS_URL',
    bullmq: packageVersion('bullmq'),
    sluice: packageVersion('@sluice/core'),
    sluiceCheckout: checkout(),
    date: startedAt.toISOString(),
    mode: profile.name,
    rounds: profile.rounds,
    loadBefore: load1(),
  };
}

/** Where a benchmark with servers of its own ran (`bench:durable`, `bench:partitions`). */
export interface RunMachine {
  readonly cpuModel: string;
  readonly cpuCount: number;
  readonly memoryGiB: number;
  readonly node: string;
  readonly redis: string;
  readonly date: string;
  readonly loadBefore: number;
  readonly loadAfter: number;
}

/** This machine now, for a run that started at `loadBefore` on redis-server `redis`. */
export function runMachine(redis: string, loadBefore: number): RunMachine {
  const cores = cpus();
  return {
    cpuModel: cores[0]?.model.trim() ?? 'unknown',
    cpuCount: cores.length,
    memoryGiB: Math.round(totalmem() / 2 ** 30),
    node: process.version,
    redis,
    date: new Date().toISOString(),
    loadBefore,
    loadAfter: load1(),
  };
}
