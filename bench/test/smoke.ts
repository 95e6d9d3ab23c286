import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const BENCH = join(__dirname, '..');

/**
 * Runs `node bench/dist/<script> --smoke --out DIR` (building the bench first unless
 * `SLUICE_SKIP_BUILD=1` and it is built) on a server of its own (`BENCH_REDIS_URL` unset), and
 * resolves with DIR, which holds the run's output files.
 */
export async function runSmoke(script: string, label: string): Promise<string> {
  const run = buildBench(script);
  const out = mkdtempSync(join(tmpdir(), `sluice-${label}-smoke-`));
  await new Promise<void>((resolve, reject) => {
    const env = { ...process.env };
    delete env['BENCH_REDIS_URL']; // a smoke run starts its own server
    execFile(
      process.execPath,
      [run, '--smoke', '--out', out],
      { env, timeout: 100_000, maxBuffer: 16 * 1024 * 1024 },
      (error, _stdout, stderr) => {
        if (error) reject(new Error(`${label} --smoke failed: ${error.message}\n${stderr}`));
        else resolve();
      },
    );
  });
  return out;
}

/**
 * Answers the path of `bench/dist/<script>`, building the bench first (Jest's global setup builds the
 * workspace, not bench/) unless `SLUICE_SKIP_BUILD=1` and it is built.
 */
export function buildBench(script: string): string {
  const run = join(BENCH, 'dist', script);
  if (process.env['SLUICE_SKIP_BUILD'] !== '1' || !existsSync(run)) {
    execFileSync(
      process.execPath,
      [require.resolve('typescript/bin/tsc'), '-b', join(BENCH, 'tsconfig.json')],
      {
        stdio: 'inherit',
      },
    );
  }
  return run;
}
