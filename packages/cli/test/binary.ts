import { execFile, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import path from 'node:path';

/** The built `sluice` binary. */
export const bin = path.resolve(__dirname, '../dist/bin.js');

export interface Result {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the binary once (a Node process) with `args`; `env` is added to this process' environment. */
export function runSluice(args: readonly string[], env: Record<string, string> = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { timeout: 30_000, env: { ...process.env, ...env } },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

/** Starts `sluice … --json dashboard …` (`args` ending in the dashboard's); resolves with its URL. */
export async function startDashboard(
  args: readonly string[],
  env: Record<string, string> = {},
): Promise<{ readonly child: ChildProcessWithoutNullStreams; readonly url: string }> {
  const child = spawn(process.execPath, [bin, ...args], {
    stdio: 'pipe',
    env: { ...process.env, ...env },
  });
  const url = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (line) resolve((JSON.parse(line) as { url: string }).url);
    });
    child.once('exit', (code) => {
      reject(new Error(`dashboard exited early with ${String(code)}`));
    });
  });
  return { child, url };
}
