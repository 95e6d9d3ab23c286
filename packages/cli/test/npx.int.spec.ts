import { execFile, execFileSync, spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { uniquePrefix, useRedis } from '@sluice/testing';

const root = path.resolve(__dirname, '../../..');

function npx(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      'npx',
      ['--no-install', 'sluice', ...args],
      { cwd: root, env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
  });
}

describe('`npx sluice` in a clone of the repository', () => {
  it('links a committed file, so `npm ci` can link it before anything is built', () => {
    const manifest = JSON.parse(readFileSync(path.join(root, 'packages/cli/package.json'), 'utf8')) as {
      bin: Record<string, string>;
      files: string[];
    };
    const target = path.posix.normalize(manifest.bin['sluice'] ?? '');
    expect(target).not.toMatch(/^dist\//);
    // Tracked by git: present in a fresh clone, before `tsc --build`.
    const tracked = execFileSync('git', ['ls-files', '--', `packages/cli/${target}`], {
      cwd: root,
      encoding: 'utf8',
    });
    expect(tracked.trim()).toBe(`packages/cli/${target}`);
    expect(statSync(path.join(root, 'packages/cli', target)).mode & 0o111).not.toBe(0);
    expect(readFileSync(path.join(root, 'packages/cli', target), 'utf8')).toMatch(
      /^#!\/usr\/bin\/env node\n/,
    );
    expect(manifest.files).toContain(target.split('/')[0]);
    // The lockfile `npm ci` installs from agrees.
    const lock = JSON.parse(readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { bin?: Record<string, string> }>;
    };
    expect(lock.packages['packages/cli']?.bin).toEqual({ sluice: target });
  });

  it('`npx sluice --help` lists the commands; a subcommand’s help shows the global options', async () => {
    const help = await npx(['--help']);
    expect(help).toMatchObject({ code: 0, stderr: '' });
    expect(help.stdout).toMatch(/^Usage: sluice /);
    for (const command of ['demo', 'stats', 'enqueue', 'dashboard']) expect(help.stdout).toContain(command);

    const sub = await npx(['enqueue', '--help']);
    expect(sub).toMatchObject({ code: 0, stderr: '' });
    expect(sub.stdout).toMatch(/^Global Options:$/m);
    for (const option of ['--redis <url>', '--prefix <prefix>', '--json', '--create']) {
      expect(sub.stdout).toContain(option);
    }
  }, 120_000);

  describe('with Redis', () => {
    const redis = useRedis();

    it('`npx sluice dashboard` serves until interrupted', async () => {
      const child = spawn(
        'npx',
        [
          '--no-install',
          'sluice',
          '--json',
          'dashboard',
          '--port',
          '0',
          '--prefix',
          uniquePrefix('npx').slice(0, -1),
        ],
        {
          cwd: root,
          env: { ...process.env, REDIS_URL: redis.url },
          stdio: ['ignore', 'pipe', 'pipe'],
          // Its own process group: Ctrl-C reaches npx and the command it runs, as in a terminal.
          detached: true,
        },
      );
      try {
        const url = await new Promise<string>((resolve, reject) => {
          let out = '';
          let err = '';
          child.stdout.on('data', (chunk: Buffer) => {
            out += chunk.toString();
            const line = out.split('\n').find((l) => l.startsWith('{'));
            if (line) resolve((JSON.parse(line) as { url: string }).url);
          });
          child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
          child.once('exit', (code) => {
            reject(new Error(`exited early with ${String(code)}: ${err}`));
          });
        });
        const overview = await fetch(new URL('api/overview', url));
        expect(overview.status).toBe(200);
      } finally {
        const exited = new Promise((resolve) => {
          child.once('exit', (code, signal) => {
            resolve(code ?? signal);
          });
        });
        process.kill(-child.pid!, 'SIGINT');
        // The dashboard exits 0 on Ctrl-C; npx then ends itself by the same signal, as npm does.
        expect([0, 'SIGINT']).toContain(await exited);
      }
    }, 60_000);
  });
});
