import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/**
 * Runs a benchmark's `main` when its file is the program (`node bench/dist/<file>.js …`): exit code 0
 * when it resolves, 1 with the error's stack on stderr when it fails.
 */
export function runAsProgram(module: NodeJS.Module, main: (argv: readonly string[]) => Promise<void>): void {
  if (require.main !== module) return;
  main(process.argv.slice(2)).then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
      process.exit(1);
    },
  );
}

/**
 * The arguments of a benchmark that knows profiles and an output directory:
 * `[--<profile> …] [--out DIR]`. `profiles` maps each flag's name (`quick`, `smoke`) to its profile.
 */
export function profileArgs<P>(
  argv: readonly string[],
  defaults: { readonly profile: P; readonly outDir: string },
  profiles: Readonly<Record<string, P>>,
  usage: string,
): { profile: P; outDir: string } {
  let { profile, outDir } = defaults;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const named = arg.startsWith('--') ? profiles[arg.slice(2)] : undefined;
    if (named !== undefined) profile = named;
    else if (arg === '--out' && argv[i + 1] !== undefined) outDir = resolve(argv[++i] ?? '');
    else throw new Error(`unknown argument ${arg}\n${usage}`);
  }
  return { profile, outDir };
}

/**
 * The `main` of a benchmark with a full and a smoke profile that writes `RESULTS-<name>.md` and
 * `results/<name>.json` into `bench/` (or `--out DIR`), logging as `[bench:<name>]`.
 */
export function benchMain<P, R>(spec: {
  readonly name: string;
  readonly profiles: { readonly full: P; readonly smoke: P };
  readonly run: (profile: P, log: (message: string) => void) => Promise<R>;
  readonly markdown: (results: R) => string;
}): (argv: readonly string[]) => Promise<void> {
  return async (argv) => {
    const { profile, outDir } = profileArgs(
      argv,
      { profile: spec.profiles.full, outDir: join(__dirname, '..') },
      { smoke: spec.profiles.smoke },
      `usage: node bench/dist/${spec.name}.js [--smoke] [--out DIR]`,
    );
    const log = (message: string): void => {
      process.stderr.write(`[bench:${spec.name}] ${message}\n`);
    };
    const results = await spec.run(profile, log);
    mkdirSync(join(outDir, 'results'), { recursive: true });
    writeFileSync(join(outDir, `RESULTS-${spec.name}.md`), spec.markdown(results));
    writeFileSync(join(outDir, 'results', `${spec.name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    log(`wrote RESULTS-${spec.name}.md and results/${spec.name}.json into ${outDir}`);
  };
}
