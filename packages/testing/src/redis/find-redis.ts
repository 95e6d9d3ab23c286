import { randomBytes } from 'node:crypto';

import { isDockerAvailable, startRedisContainer } from './docker';
import { spawnRedis } from './redis-server';
import type { SpawnRedisOptions } from './redis-server';
import { RespError, sendCommands } from './resp';
import type { RedisServerHandle } from './types';

/**
 * How `findRedis` may get a server when `REDIS_URL` is not set:
 * - `auto` (default): a testcontainers `redis:7` when a Docker engine answers, else spawn redis-server;
 * - `container`: testcontainers only (fails without Docker);
 * - `spawn`: spawn redis-server only (never touches Docker).
 */
export type RedisMode = 'auto' | 'container' | 'spawn';

export interface FindRedisOptions {
  /** Use this server instead of `REDIS_URL`. */
  readonly url?: string;
  /** Default: `SLUICE_TEST_REDIS` env var, else `auto`. */
  readonly mode?: RedisMode;
  /** Environment to read `REDIS_URL`, `SLUICE_TEST_REDIS` and `DOCKER_HOST` from (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
  /** Budget for the Docker engine check (default 2 000 ms). */
  readonly dockerTimeoutMs?: number;
  /** Container image (default `$SLUICE_TEST_REDIS_IMAGE` or `redis:7`). */
  readonly image?: string;
  /** Options for the spawn fallback. */
  readonly spawn?: SpawnRedisOptions;
}

const MODES: readonly RedisMode[] = ['auto', 'container', 'spawn'];

function modeFrom(options: FindRedisOptions, env: NodeJS.ProcessEnv): RedisMode {
  if (options.mode !== undefined) return options.mode;
  const raw = env['SLUICE_TEST_REDIS'];
  if (raw === undefined || raw === '') return 'auto';
  const mode = MODES.find((m) => m === raw.toLowerCase());
  if (mode === undefined) {
    throw new Error(`SLUICE_TEST_REDIS must be one of ${MODES.join(', ')} (got ${JSON.stringify(raw)})`);
  }
  return mode;
}

async function fromUrl(url: string): Promise<RedisServerHandle> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new Error(`REDIS_URL is not a URL: ${JSON.stringify(url)}`);
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new Error(`REDIS_URL must be a redis:// or rediss:// URL (got ${parsed.protocol})`);
  }
  const host = parsed.hostname.replace(/^\[|\]$/g, '') || 'localhost';
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (parsed.protocol === 'redis:') {
    // Fail fast with a clear message instead of letting every test time out. Read-only probe.
    const password = decodeURIComponent(parsed.password);
    const username = decodeURIComponent(parsed.username);
    const auth = password === '' ? [] : [username === '' ? ['AUTH', password] : ['AUTH', username, password]];
    const reply = await sendCommands(host, port, [...auth, ['PING']], 5_000).then(
      (replies) => replies.pop(),
      (error: unknown) => {
        throw new Error(`REDIS_URL ${host}:${port} does not answer: ${String(error)}`, { cause: error });
      },
    );
    if (reply instanceof RespError)
      throw new Error(`REDIS_URL ${host}:${port} answers PING with ${reply.message}`);
  }
  return { url, host, port, source: 'env', owned: false, stop: () => Promise.resolve() };
}

let warnedFallback = false;

/**
 * A Redis for tests, in this order: `options.url` / `REDIS_URL` (used as is, never flushed,
 * `owned: false`); a testcontainers `redis:7` when a Docker engine answers; a spawned redis-server.
 * Set `SLUICE_TEST_REDIS=spawn` to skip Docker, `=container` to require it.
 */
export async function findRedis(options: FindRedisOptions = {}): Promise<RedisServerHandle> {
  const env = options.env ?? process.env;
  const url = options.url ?? env['REDIS_URL'];
  if (url !== undefined && url !== '') return fromUrl(url);

  const mode = modeFrom(options, env);
  if (mode !== 'spawn') {
    const containerOptions = options.image === undefined ? {} : { image: options.image };
    const docker =
      mode === 'container' ||
      (await isDockerAvailable({
        env,
        ...(options.dockerTimeoutMs === undefined ? {} : { timeoutMs: options.dockerTimeoutMs }),
      }));
    if (docker) {
      try {
        return await startRedisContainer(containerOptions);
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (mode === 'container') {
          throw new Error(`findRedis (mode container): the Redis container did not start: ${reason}`, {
            cause: error,
          });
        }
        if (!warnedFallback) {
          warnedFallback = true;
          process.emitWarning(
            `@sluice/testing: Docker answered but the Redis container did not start (${reason}); ` +
              'spawning redis-server instead. Set SLUICE_TEST_REDIS=spawn to skip Docker.',
          );
        }
      }
    }
  }
  return spawnRedis(options.spawn);
}

/**
 * A key prefix unique to this call, e.g. `t:enqueue:1f3a9c0d27b4e5a6:` (label sanitised to
 * `[A-Za-z0-9_.-]`, 64 random bits), so tests sharing one Redis never see each other's keys.
 * It ends with `:` so it can be used as ioredis `keyPrefix` or concatenated with a key directly.
 */
export function uniquePrefix(label = 'test'): string {
  const safe = label.replace(/[^A-Za-z0-9_.-]+/g, '_') || 'test';
  return `t:${safe}:${randomBytes(8).toString('hex')}:`;
}
