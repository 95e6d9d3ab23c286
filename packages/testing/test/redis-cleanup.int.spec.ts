import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { isPortFree } from '../src/redis';

/**
 * A test run that dies without calling stop() must not leak redis-server processes or temp dirs.
 * Each case runs a separate Node process (loading the harness sources through @swc/core) that spawns
 * a server and then dies in a different way.
 */

const harness = join(__dirname, '..', 'src', 'redis', 'index.ts');

const childScript = (mode: string): string => `
const fs = require('node:fs');
const { transformSync } = require(${JSON.stringify(require.resolve('@swc/core'))});
require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(fs.readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
require(${JSON.stringify(harness)}).spawnRedis().then((redis) => {
  process.stdout.write(JSON.stringify({ pid: redis.pid, dir: redis.dir, port: redis.port }) + '\\n');
  const mode = ${JSON.stringify(mode)};
  // Throws once the parent has seen the server alive (a line on stdin): a loaded machine may read
  // the first line late.
  if (mode === 'throw') process.stdin.once('data', () => { throw new Error('test run crashed'); });
  else if (mode === 'sigterm') process.kill(process.pid, 'SIGTERM');
  else setInterval(() => undefined, 1000); // wait to be SIGKILLed
});
`;

interface Started {
  readonly pid: number;
  readonly dir: string;
  readonly port: number;
}

/** Alive and not a zombie (an orphaned, killed child may linger as a zombie until init reaps it). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !/^\d+ \(.*\) Z/.test(stat);
  } catch {
    return process.platform !== 'linux';
  }
}

async function eventually(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await sleep(50);
  }
}

async function runChild(
  mode: string,
): Promise<{ started: Started; exited: Promise<unknown>; kill: () => void; go: () => void }> {
  const child = spawn(process.execPath, ['-e', childScript(mode)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const started = await new Promise<Started>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const line = stdout.split('\n')[0];
      if (stdout.includes('\n') && line !== undefined) resolve(JSON.parse(line) as Started);
    });
    void exited.then(() => {
      reject(new Error(`child exited before starting redis: ${stderr}`));
    });
  });
  return {
    started,
    exited,
    kill: () => {
      if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
    },
    go: () => {
      child.stdin.write('go\n');
    },
  };
}

async function expectCleanedUp(started: Started, timeoutMs: number): Promise<void> {
  expect(await eventually(() => !alive(started.pid), timeoutMs)).toBe(true);
  expect(await eventually(() => !existsSync(started.dir), timeoutMs)).toBe(true);
  expect(await eventually(() => isPortFree(started.port), timeoutMs)).toBe(true);
}

describe('cleanup when a test run dies without stop()', () => {
  it('kills the server on an uncaught exception (exit hook)', async () => {
    const { started, exited, go } = await runChild('throw');
    expect(alive(started.pid)).toBe(true);
    go();
    await exited;
    await expectCleanedUp(started, 1_000);
  });

  it('kills the server on SIGTERM (signal hook)', async () => {
    const { started, exited } = await runChild('sigterm');
    await exited;
    await expectCleanedUp(started, 1_000);
  });

  it('kills the server when the process is SIGKILLed (watchdog)', async () => {
    const { started, exited, kill } = await runChild('wait');
    expect(alive(started.pid)).toBe(true);
    kill();
    await exited;
    await expectCleanedUp(started, 5_000);
  });
});
