import { execFile } from 'node:child_process';
import { buildBench } from './smoke';

function run(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const script = buildBench('worker-instructions.js');
  const env = { ...process.env };
  delete env['BENCH_REDIS_URL']; // a server of its own
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [script, ...args],
      { env, timeout: 150_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr });
      },
    );
  });
}

/**
 * `npm run bench:worker-instructions` end to end on a small backlog: the worker runs under callgrind
 * and the count covers the jobs after the warm-up. Only checked to be a count of that work: the
 * jobs counted are the ones after the warm-up, and the worker executed instructions for them.
 */
describe('bench:worker-instructions', () => {
  it.each([
    ['batches of 100', []],
    ['concurrency 100', ['--single']],
  ])(
    'counts the instructions of a drain after its warm-up (%s)',
    async (mode, flags) => {
      const { code, stdout, stderr } = await run([
        ...flags,
        '--jobs',
        '2000',
        '--warm',
        '1200',
        '--rounds',
        '1',
      ]);
      expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
      const line = new RegExp(`${mode}: (\\d+) jobs counted, (\\d+) instructions, (\\d+) per job`).exec(
        stdout,
      );
      expect(line).not.toBeNull();
      const [counted, instructions, perJob] = line!.slice(1).map(Number) as [number, number, number];
      expect(counted).toBe(800);
      expect(instructions).toBeGreaterThan(0);
      expect(perJob).toBe(Math.round(instructions / counted));
      expect(stdout).toMatch(/median: \d+ instructions per job/);
    },
    150_000,
  );

  it('measures the same drain at full speed with --cpu: the CPU time of the jobs after the warm-up, by thread', async () => {
    const { code, stdout, stderr } = await run([
      '--cpu',
      '--jobs',
      '3000',
      '--warm',
      '1000',
      '--rounds',
      '2',
    ]);
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' });
    const rounds = [
      ...stdout.matchAll(
        /batches of 100: (\d+) jobs counted, worker CPU ([\d.]+) µs per job(?: \(main thread ([\d.]+), other threads ([\d.]+)\))?/g,
      ),
    ];
    expect(rounds.map((m) => Number(m[1]))).toEqual([2000, 2000]);
    for (const m of rounds) {
      expect(Number(m[2])).toBeGreaterThan(0);
      // Linux gives each thread's time: the split is printed, and the JavaScript ran on the main thread.
      if (process.platform === 'linux') {
        expect(m[3]).toBeDefined();
        expect(Number(m[3])).toBeGreaterThan(0);
        expect(Number(m[4])).toBeGreaterThanOrEqual(0);
      }
    }
    expect(stdout).toMatch(/median: worker CPU [\d.]+ µs per job/);
  }, 60_000);

  it('passes --node-flags to the worker process, and reads its report among the lines they print', async () => {
    const traced = await run([
      '--cpu',
      '--jobs',
      '2000',
      '--warm',
      '1000',
      '--rounds',
      '1',
      '--node-flags',
      '--trace-gc',
    ]);
    expect({ code: traced.code, stderr: traced.code === 0 ? '' : traced.stderr }).toEqual({
      code: 0,
      stderr: '',
    });
    expect(traced.stdout).toMatch(/batches of 100: 1000 jobs counted, worker CPU [\d.]+ µs per job/);
    // A flag the worker's Node refuses fails the worker: the flags reached its command line.
    const refused = await run([
      '--cpu',
      '--jobs',
      '200',
      '--warm',
      '100',
      '--rounds',
      '1',
      '--node-flags',
      '--no-such-flag-x',
    ]);
    expect(refused.code).not.toBe(0);
    expect(`${refused.stdout}${refused.stderr}`).toMatch(/the worker exited with \d+:[^]*--no-such-flag-x/);
  }, 60_000);

  it('refuses a warm-up that leaves no job to count', async () => {
    const { code, stdout, stderr } = await run(['--jobs', '100', '--warm', '100', '--rounds', '1']);
    expect(code).not.toBe(0);
    expect(`${stdout}${stderr}`).toMatch(/--warm must be at least 0 and below --jobs \(100\), got 100/);
  }, 60_000);
});
