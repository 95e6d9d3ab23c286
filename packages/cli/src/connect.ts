import type { Store } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { CliError } from './io';

export interface ConnectOptions {
  /** `--redis`; default `REDIS_URL`, then `redis://127.0.0.1:6379`. */
  readonly redis?: string;
  /** `--prefix`; default `sluice`. */
  readonly prefix?: string;
}

/** The Redis URL a command uses, validated; credentials are hidden in messages. */
export function redisUrl(options: ConnectOptions): string {
  const url = options.redis ?? process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new CliError(
      `invalid Redis URL "${redact(url)}": expected redis://[user:password@]host:port[/db]`,
      2,
    );
  }
  if (parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') {
    throw new CliError(`invalid Redis URL "${redact(url)}": the scheme must be redis:// or rediss://`, 2);
  }
  return url;
}

export function redact(url: string): string {
  return url.replace(/\/\/([^@/]*)@/, '//***@');
}

/** Connects to Redis, failing fast with one clear line when nothing answers. */
export async function openStore(options: ConnectOptions): Promise<Store> {
  const url = redisUrl(options);
  try {
    return await RedisStore.connect({
      url,
      ...(options.prefix ? { prefix: options.prefix } : {}),
      connectTimeoutMs: 3000,
    });
  } catch (err) {
    throw new CliError(`cannot connect to Redis at ${redact(url)}: ${(err as Error).message}`);
  }
}
