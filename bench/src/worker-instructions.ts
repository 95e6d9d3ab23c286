/**
 * `npm run bench:worker-instructions` — the worker's work per job as instructions, counted by
 * Valgrind's callgrind: a worker with the throughput scenario's pipeline and jobs (completions
 * counted on `outcomes$`, as the benchmark's worker does) runs in a process of its own under
 * callgrind, on a backlog this process added to a redis-server of its own, and the count covers the jobs after a
 * warm-up (the JIT compiles the worker meanwhile), every thread of the process included (the
 * collector's helper threads too).
 *
 * Why: the worker's CPU seconds per job on a two-core machine, which Redis and the collector's
 * threads share, moved by 30 % and more from one round to the next; an instruction count repeats to
 * within a few percent, so two checkouts can be compared (run it in each, a round at a time). Only
 * counts are figures: the worker runs some fifty times slower under callgrind, so Redis is never
 * what it waits for (reserves and settles are as large as the pipeline allows), and work that
 * follows the clock rather than the jobs (lease renewals, heartbeats, recovery) weighs more per job
 * than at full speed, the same way for both checkouts.
 *
 * ```
 * npm run bench:worker-instructions                          # batches of 100; 40,000 jobs, 20,000 counted; 3 rounds
 * npm run bench:worker-instructions -- --single              # one job per call, concurrency 100
 * npm run bench:worker-instructions -- --jobs 60000 --warm 30000 --rounds 5
 * npm run bench:worker-instructions -- --cpu --jobs 300000  # the same drain at full speed: CPU µs per job instead,
 *                                                           # split into the main thread's and the others' on Linux
 * npm run bench:worker-instructions -- --cpu --node-flags "--single-threaded-gc"   # flags for the worker process
 * ```
 *
 * Needs `valgrind` (Debian: `apt-get install -y valgrind`) and `callgrind_control` (part of it).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Queue } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { payload } from './producers';
import type { BenchPayload } from './protocol';
import { RedisTarget } from './redis-target';
import { median } from './stats';

export interface WorkerInstructionsOptions {
  /** Batches of 100 (10 handler calls at once) instead of one job per call at concurrency 100. */
  readonly batch: boolean;
  /** Jobs added and drained per round. */
  readonly jobs: number;
  /** Completions before the count starts (the warm-up). */
  readonly warm: number;
  readonly rounds: number;
  /**
   * Run the worker at full speed (no callgrind) and measure its CPU time over the same jobs instead:
   * the figure the throughput scenario reports, from a drain shaped like it (the backlog added by
   * another process, the worker fresh), for a change that moves CPU seconds and not instructions.
   */
  readonly cpu?: boolean;
  /**
   * Node and V8 flags for the worker process (for example `--single-threaded-gc`): how a
   * deployment's choice of flags moves the worker's cost, measured the same way. Default: none.
   */
  readonly nodeFlags?: readonly string[];
}

export interface WorkerInstructionsRound {
  readonly mode: 'concurrency 100' | 'batches of 100';
  /** Jobs counted (completed after the warm-up). */
  readonly counted: number;
  /** Instructions the worker process executed while they were drained (callgrind's `totals`); 0 with `cpu`. */
  readonly instructions: number;
  /** Instructions per job counted, or with `cpu` the worker's CPU µs per job counted. */
  readonly perJob: number;
  /**
   * With `cpu`, where Linux gives each thread's time: the part of `perJob` spent on the main thread
   * (the JavaScript) and on the others (V8's optimizing compiler and collector helpers, libuv), µs
   * per job, measured by the threads' own clocks (so the two need not add up to `perJob` exactly).
   */
  readonly threads?: { readonly mainPerJob: number; readonly otherPerJob: number };
}

interface Exit {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runChild(command: string, args: readonly string[]): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      resolve({ code, stdout, stderr });
    });
  });
}

/**
 * The instructions a callgrind output file counts: its `totals:` line (its `summary:` line stays 0
 * when the instrumentation started off and was switched on by `callgrind_control`).
 */
export function callgrindTotal(text: string): number {
  const line = /^totals:\s*(\d+)/m.exec(text);
  if (!line?.[1]) throw new Error('no totals line in the callgrind output');
  return Number(line[1]);
}

async function countRound(
  target: RedisTarget,
  options: WorkerInstructionsOptions,
  n: number,
): Promise<WorkerInstructionsRound> {
  const prefix = `sluice-worker-instructions-${process.pid}-${n}`;
  const dir = mkdtempSync(join(tmpdir(), 'sluice-worker-instructions-'));
  try {
    const store = await RedisStore.connect({ url: target.url, prefix });
    try {
      // The throughput scenario's jobs, added in its calls of 1,000.
      const queue = new Queue<BenchPayload>(store, 'drain');
      for (let i = 0; i < options.jobs; i += 1000) {
        const size = Math.min(1000, options.jobs - i);
        await queue.addBulk(Array.from({ length: size }, (_, j) => ({ data: payload(i + j) })));
      }
    } finally {
      await store.close();
    }
    const out = join(dir, 'callgrind.out');
    const cpu = options.cpu === true;
    const spec = {
      url: target.url,
      prefix,
      batch: options.batch,
      jobs: options.jobs,
      warm: options.warm,
      cpu,
    };
    const worker = [
      ...(options.nodeFlags ?? []),
      join(__dirname, 'workers', 'drain-worker.js'),
      JSON.stringify(spec),
    ];
    const exit = cpu
      ? await runChild(process.execPath, worker)
      : await runChild('valgrind', [
          '--tool=callgrind',
          '--instr-atstart=no',
          `--callgrind-out-file=${out}`,
          process.execPath,
          ...worker,
        ]);
    if (exit.code !== 0) {
      throw new Error(`the worker exited with ${String(exit.code)}: ${exit.stderr.slice(-2000)}`);
    }
    // The worker's report is its last line of JSON (flags such as `--trace-gc` print lines of their own).
    const last =
      exit.stdout
        .trim()
        .split('\n')
        .filter((line) => line.startsWith('{"measured"'))
        .pop() ?? '';
    const { measured, cpuUs, mainUs, otherUs } = JSON.parse(last) as {
      measured: number;
      cpuUs: number;
      mainUs?: number;
      otherUs?: number;
    };
    const mode = options.batch ? 'batches of 100' : 'concurrency 100';
    if (cpu) {
      const threads =
        mainUs === undefined || otherUs === undefined
          ? {}
          : { threads: { mainPerJob: mainUs / measured, otherPerJob: otherUs / measured } };
      return { mode, counted: measured, instructions: 0, perJob: cpuUs / measured, ...threads };
    }
    const instructions = callgrindTotal(readFileSync(out, 'utf8'));
    return { mode, counted: measured, instructions, perJob: instructions / measured };
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await target.reset([prefix]);
  }
}

/** Every round, each on a queue of its own on one server (own, or `BENCH_REDIS_URL`). */
export async function workerInstructions(
  options: WorkerInstructionsOptions,
): Promise<WorkerInstructionsRound[]> {
  if (!(options.warm >= 0 && options.warm < options.jobs)) {
    throw new Error(`--warm must be at least 0 and below --jobs (${options.jobs}), got ${options.warm}`);
  }
  const target = await RedisTarget.open(process.env['BENCH_REDIS_URL']);
  try {
    const rounds: WorkerInstructionsRound[] = [];
    for (let n = 1; n <= options.rounds; n++) rounds.push(await countRound(target, options, n));
    return rounds;
  } finally {
    await target.close();
  }
}

function parse(argv: readonly string[]): WorkerInstructionsOptions {
  let batch = true;
  let jobs = 40_000;
  let warm: number | undefined;
  let rounds = 3;
  let cpu = false;
  const nodeFlags: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (min: number): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < min) throw new Error(`${arg} needs a whole number ≥ ${min}`);
      return v;
    };
    if (arg === '--single') batch = false;
    else if (arg === '--cpu') cpu = true;
    else if (arg === '--jobs') jobs = value(1);
    else if (arg === '--warm') warm = value(0);
    else if (arg === '--rounds') rounds = value(1);
    else if (arg === '--node-flags') nodeFlags.push(...(argv[++i] ?? '').split(/\s+/).filter(Boolean));
    else
      throw new Error(
        `usage: node bench/dist/worker-instructions.js [--single] [--cpu] [--jobs N] [--warm N] [--rounds N] [--node-flags "FLAGS"]; got ${arg}`,
      );
  }
  return { batch, jobs, warm: warm ?? Math.floor(jobs / 2), rounds, cpu, nodeFlags };
}

if (require.main === module) {
  const options = parse(process.argv.slice(2));
  workerInstructions(options).then(
    (rounds) => {
      for (const r of rounds) {
        console.log(
          options.cpu
            ? `[bench:worker-instructions] ${r.mode}: ${r.counted} jobs counted, worker CPU ${r.perJob.toFixed(2)} µs per job` +
                (r.threads
                  ? ` (main thread ${r.threads.mainPerJob.toFixed(2)}, other threads ${r.threads.otherPerJob.toFixed(2)})`
                  : '')
            : `[bench:worker-instructions] ${r.mode}: ${r.counted} jobs counted, ${r.instructions} instructions, ` +
                `${Math.round(r.perJob)} per job`,
        );
      }
      const mid = median(rounds.map((r) => r.perJob));
      console.log(
        options.cpu
          ? `[bench:worker-instructions] median: worker CPU ${mid.toFixed(2)} µs per job`
          : `[bench:worker-instructions] median: ${Math.round(mid)} instructions per job`,
      );
    },
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
