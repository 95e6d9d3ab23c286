import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix, resolve } from 'node:path';
import { promisify } from 'node:util';

/**
 * The packages as a user gets them: `npm pack` every publishable workspace package, install the
 * tarballs into a fresh app (only the npm registry needed, and `--prefer-offline` lets the cache that
 * `npm ci` filled answer), type-check a TypeScript app with `module`/`moduleResolution` `nodenext`,
 * `strict` and `exactOptionalPropertyTypes`, and run it as CommonJS and as an ES module.
 */

const run = promisify(execFile);
const REPO_ROOT = resolve(__dirname, '../../..');

interface Manifest {
  name: string;
  private?: boolean;
  main?: string;
  types?: string;
  bin?: Record<string, string>;
  files?: string[];
  exports?: Record<string, string | { types?: string; default?: string }>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  peerDependenciesMeta?: Record<string, { optional?: boolean }>;
}

interface PackResult {
  name: string;
  filename: string;
  files: { path: string }[];
}

/** The workspace folders under `packages/` that are published (not `private`). */
function publishedPackages(): { dir: string; manifest: Manifest }[] {
  return readdirSync(join(REPO_ROOT, 'packages'), { withFileTypes: true })
    .filter((e) => e.isDirectory() && existsSync(join(REPO_ROOT, 'packages', e.name, 'package.json')))
    .map((e) => {
      const dir = join(REPO_ROOT, 'packages', e.name);
      return { dir, manifest: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as Manifest };
    })
    .filter((p) => p.manifest.private !== true)
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

/** The same program, as `main.cts` and as `main.mts` (no top-level await: it must work as CommonJS). */
const APP = `import { definePipeline, MemoryStore, Queue, silentLogger, Worker, type Store } from '@sluice/core';
import { RedisStore, type RedisStoreOptions } from '@sluice/redis';
import { createMetrics } from '@sluice/dashboard';
import { bridgeToOpenTelemetry } from '@sluice/opentelemetry';
import { Redis } from 'ioredis';

interface Square {
  readonly n: number;
}

// Type-level checks of what a user writes against the published types.
const fromEnv: RedisStoreOptions = { url: process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379', prefix: 'app' };
const withClient = (client: Redis): RedisStoreOptions => ({ connection: client });
const anyStore = (store: RedisStore): Store => store;

async function main(): Promise<void> {
  const store = new MemoryStore();
  const squares = new Queue<Square>(store, 'squares', {
    schema: { type: 'object', required: ['n'], properties: { n: { type: 'integer' } } },
  });
  const pipeline = definePipeline<Square, number>({
    queue: 'squares',
    concurrency: 2,
    handler: (job) => Promise.resolve(job.data.n * job.data.n),
  });
  const worker = new Worker({ store, pipelines: [pipeline], logger: silentLogger });
  const results: number[] = [];
  const done = new Promise<void>((resolve) => {
    worker.outcomes$.subscribe((outcome) => {
      if (outcome.kind === 'completed') results.push(outcome.result as number);
      if (results.length === 5) resolve();
    });
  });
  worker.start();
  await squares.addBulk([1, 2, 3, 4, 5].map((n) => ({ data: { n } })));
  await done;
  await worker.close({ timeoutMs: 1000 });
  await store.close();
  console.log(
    JSON.stringify({
      module: typeof require === 'function' ? 'commonjs' : 'esm',
      squares: results.sort((a, b) => a - b),
      redis: typeof RedisStore.connect,
      ioredis: typeof Redis,
      dashboard: typeof createMetrics,
      opentelemetry: typeof bridgeToOpenTelemetry,
      typed: [typeof fromEnv, typeof withClient, typeof anyStore],
    }),
  );
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
`;

describe('the packages, packed and installed into a fresh app', () => {
  const packages = publishedPackages();
  let work: string;
  let packed: PackResult[];

  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'sluice-pack-'));
    const { stdout } = await run(
      'npm',
      [
        'pack',
        '--json',
        '--pack-destination',
        work,
        ...packages.flatMap((p) => ['--workspace', p.manifest.name]),
      ],
      { cwd: REPO_ROOT, maxBuffer: 64 * 1024 * 1024 },
    );
    packed = JSON.parse(stdout) as PackResult[];
  }, 60_000);

  afterAll(() => {
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('packs every published package with its licence, README, entry points and the sources its maps name', () => {
    expect(packed.map((p) => p.name).sort()).toEqual(packages.map((p) => p.manifest.name));
    const rootLicense = readFileSync(join(REPO_ROOT, 'LICENSE'), 'utf8');
    expect(rootLicense).toMatch(/^MIT License/);
    for (const { dir, manifest } of packages) {
      const result = packed.find((p) => p.name === manifest.name)!;
      const files = new Set(result.files.map((f) => f.path));
      const missing = (path: string | undefined): string[] =>
        path === undefined || files.has(posix.normalize(path)) ? [] : [`${manifest.name}: ${path}`];
      expect(readFileSync(join(dir, 'LICENSE'), 'utf8')).toBe(rootLicense);
      const problems = [
        ...missing('LICENSE'),
        ...missing('README.md'),
        ...missing(manifest.main),
        ...missing(manifest.types),
        ...Object.values(manifest.bin ?? {}).flatMap(missing),
        ...Object.values(manifest.exports ?? {}).flatMap((e) =>
          typeof e === 'string' ? missing(e) : [...missing(e.types), ...missing(e.default)],
        ),
      ];
      // Every source map points at files that ship (a debugger or a stack trace can open them).
      for (const map of [...files].filter((f) => f.endsWith('.map'))) {
        const parsed = JSON.parse(readFileSync(join(dir, map), 'utf8')) as {
          sources: string[];
          sourceRoot?: string;
        };
        for (const source of parsed.sources) {
          const shipped = posix.normalize(posix.join(posix.dirname(map), parsed.sourceRoot ?? '', source));
          if (!files.has(shipped)) problems.push(`${manifest.name}: ${map} names ${shipped}, not shipped`);
        }
      }
      expect(problems).toEqual([]);
      expect([...files].filter((f) => /(^|\/)test\/|\.spec\.|tsbuildinfo/.test(f))).toEqual([]);
    }
  });

  it('declares ioredis and testcontainers as peers, testcontainers optional', () => {
    const byName = new Map(packages.map((p) => [p.manifest.name, p.manifest]));
    const redis = byName.get('@sluice/redis')!;
    expect(redis.dependencies?.['ioredis']).toBeUndefined();
    expect(redis.peerDependencies?.['ioredis']).toBe('^5.10.1 || ^6.0.0');
    const testing = byName.get('@sluice/testing')!;
    expect(testing.dependencies?.['testcontainers']).toBeUndefined();
    expect(testing.peerDependenciesMeta?.['testcontainers']?.optional).toBe(true);
  });

  it('installs into an app that type-checks under nodenext and runs as CommonJS and as ESM', async () => {
    const app = join(work, 'app');
    const tarballs = packed.map((p) => join(work, p.filename));
    const rootLock = JSON.parse(readFileSync(join(REPO_ROOT, 'package-lock.json'), 'utf8')) as {
      packages: Record<string, { version?: string }>;
    };
    const version = (name: string): string => rootLock.packages[`node_modules/${name}`]?.version ?? 'latest';
    rmSync(app, { recursive: true, force: true });
    await run('mkdir', ['-p', join(app, 'src')]);
    writeFileSync(
      join(app, 'package.json'),
      JSON.stringify({ name: 'sluice-user-app', version: '1.0.0', private: true }, null, 2),
    );
    writeFileSync(
      join(app, 'tsconfig.json'),
      JSON.stringify(
        {
          compilerOptions: {
            target: 'ES2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            exactOptionalPropertyTypes: true,
            noUncheckedIndexedAccess: true,
            skipLibCheck: false,
            types: ['node'],
            rootDir: 'src',
            outDir: 'dist',
          },
          include: ['src'],
        },
        null,
        2,
      ),
    );
    writeFileSync(join(app, 'src', 'main.cts'), APP);
    writeFileSync(join(app, 'src', 'main.mts'), APP);
    // The versions the repository is tested with, from npm's cache when it has them.
    await run(
      'npm',
      [
        'install',
        '--prefer-offline',
        '--no-audit',
        '--no-fund',
        '--ignore-scripts',
        ...tarballs,
        `rxjs@${version('rxjs')}`,
        `ioredis@${version('ioredis')}`,
        `@opentelemetry/api@${version('@opentelemetry/api')}`,
        `typescript@${version('typescript')}`,
        `@types/node@${version('@types/node')}`,
      ],
      { cwd: app, maxBuffer: 64 * 1024 * 1024, env: { ...process.env, npm_config_workspaces: '' } },
    );
    // An optional peer is not installed: the marble and spawned-server paths must not need it.
    expect(existsSync(join(app, 'node_modules', 'testcontainers'))).toBe(false);

    // skipLibCheck off, so the published declarations are checked too; errors inside other libraries'
    // declarations (ioredis 6 names an untyped module) are theirs, and tsc still emits.
    const tsc = await run(
      process.execPath,
      [join(app, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', app],
      {
        cwd: app,
      },
    ).then(
      () => '',
      (error: unknown) => (error as { stdout?: string }).stdout ?? 'tsc failed without output',
    );
    const ours = tsc
      .split('\n')
      .filter((line) => /^\S+\(\d+,\d+\): error /.test(line))
      .filter((line) => !line.startsWith('node_modules/') || line.startsWith('node_modules/@sluice/'));
    expect(ours).toEqual([]);

    for (const [file, module] of [
      ['main.cjs', 'commonjs'],
      ['main.mjs', 'esm'],
    ] as const) {
      const { stdout } = await run(process.execPath, [join(app, 'dist', file)], { cwd: app });
      expect(JSON.parse(stdout.trim())).toEqual({
        module,
        squares: [1, 4, 9, 16, 25],
        redis: 'function',
        ioredis: 'function',
        dashboard: 'function',
        opentelemetry: 'function',
        typed: ['object', 'function', 'function'],
      });
    }

    // The installed command runs; @sluice/testing spawns a redis-server without testcontainers.
    const help = await run(join(app, 'node_modules', '.bin', 'sluice'), ['enqueue', '--help'], { cwd: app });
    expect(help.stdout).toMatch(/Global Options:/);
    const spawned = await run(
      process.execPath,
      [
        '-e',
        `const { findRedis, pipelineHarness } = require('@sluice/testing');
const { RedisStore } = require('@sluice/redis');
(async () => {
  const redis = await findRedis({ mode: 'spawn', env: {} });
  try {
    const store = await RedisStore.connect({ url: redis.url, prefix: 'app' });
    await store.close();
  } finally {
    await redis.stop();
  }
  console.log(redis.source, typeof pipelineHarness);
})().catch((e) => { console.error(e); process.exitCode = 1; });`,
      ],
      { cwd: app },
    );
    expect(spawned.stdout.trim()).toBe('spawned function');
  }, 120_000);
});
