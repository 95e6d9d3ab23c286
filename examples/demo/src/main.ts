#!/usr/bin/env node
import { runDemo, type DemoOptions } from './demo';

function parseArgs(argv: readonly string[]): { options: DemoOptions; json: boolean } {
  let json = false;
  const options: { -readonly [K in keyof DemoOptions]: DemoOptions[K] } = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    switch (arg) {
      case '--json':
        json = true;
        break;
      case '--store': {
        const v = next();
        if (v !== 'auto' && v !== 'memory' && v !== 'redis')
          throw new Error('--store is auto, memory or redis');
        options.store = v;
        break;
      }
      case '--redis':
        options.redisUrl = next();
        break;
      case '--jobs':
        options.jobs = positiveInt(next(), '--jobs');
        break;
      case '--allowed':
        options.allowed = positiveInt(next(), '--allowed');
        break;
      case '--period-ms':
        options.periodMs = positiveInt(next(), '--period-ms');
        break;
      case '--concurrency':
        options.concurrency = positiveInt(next(), '--concurrency');
        break;
      default:
        throw new Error(
          `unknown option ${arg} (try --json, --store, --redis, --jobs, --allowed, --period-ms, --concurrency)`,
        );
    }
  }
  return { options, json };
}

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`);
  return n;
}

async function main(): Promise<void> {
  const { options, json } = parseArgs(process.argv.slice(2));
  // With --json the readable lines go to stderr so stdout's last line is the JSON object.
  const print = json ? (line: string) => void process.stderr.write(`${line}\n`) : undefined;
  const summary = await runDemo({ ...options, ...(print ? { print } : {}) });
  if (json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  if (summary.completed + summary.dead !== summary.jobs || summary.maxStartsInAnyWindow > summary.allowed) {
    process.exitCode = 1;
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
