/**
 * Tries `RedisStore.connect` `attempts` times with one connection spec (`parallel` at a time), then stays alive `lingerMs`
 * so that an error a dropped socket raises late (after `connect` already rejected) would surface as
 * an uncaught exception and kill this process. Prints one JSON line ({@link ConnectCheckReport}) and
 * exits 0; a non-zero exit means the process crashed.
 *
 * Started with `child_process.fork(faults/dist/connect-check.js, [JSON ConnectCheckConfig])`.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { RedisStore } from '@sluice/redis';
import { readConfig, toConnection } from './program';
import type { ConnectCheckConfig, ConnectCheckReport } from './protocol';

const config = readConfig() as ConnectCheckConfig;

type Result = ConnectCheckReport['results'][number];

async function attempt(): Promise<Result> {
  const started = Date.now();
  try {
    const store = await RedisStore.connect({
      connection: toConnection(config.connection),
      prefix: 'connect-check',
      connectTimeoutMs: config.connectTimeoutMs,
    });
    await store.close();
    return { ok: true, ms: Date.now() - started };
  } catch (error) {
    return {
      ok: false,
      ms: Date.now() - started,
      error: error instanceof Error ? error.message : String(error),
    };
  }
}

async function main(): Promise<void> {
  const results: Result[] = [];
  const parallel = Math.max(1, config.parallel ?? 1);
  for (let done = 0; done < config.attempts; done += parallel) {
    const wave = Math.min(parallel, config.attempts - done);
    results.push(...(await Promise.all(Array.from({ length: wave }, attempt))));
  }
  await sleep(config.lingerMs);
  const report: ConnectCheckReport = { results };
  process.stdout.write(`${JSON.stringify(report)}\n`);
  process.exit(0);
}

main().catch((error: unknown) => {
  process.stderr.write(
    `connect-check failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exit(1);
});
