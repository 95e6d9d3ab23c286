import { StoreError } from '@sluice/core';
import type { RedisClient } from './scripts';

/** The oldest Redis this package supports: the one it is tested on (the fault suite and bench use 7.0). */
export const MIN_REDIS_VERSION = '7.0.0';

/**
 * The `redis_version` line of an `INFO server` reply (`7.0.15`), or `undefined` when the reply has
 * none. Valkey reports its Redis-compatible version there as well.
 */
export function parseRedisVersion(info: string): string | undefined {
  const match = /^redis_version:(\S+)\s*$/m.exec(info);
  return match?.[1];
}

/** Whether `version` (`major.minor.patch`, extra parts ignored) is at least `minimum`. */
export function isVersionAtLeast(version: string, minimum: string = MIN_REDIS_VERSION): boolean {
  const parts = (v: string): number[] => v.split('.').map((p) => Number.parseInt(p, 10) || 0);
  const have = parts(version);
  const need = parts(minimum);
  for (let i = 0; i < Math.max(have.length, need.length, 3); i++) {
    const a = have[i] ?? 0;
    const b = need[i] ?? 0;
    if (a !== b) return a > b;
  }
  return true;
}

/**
 * Throws a `StoreError` naming the server's version and the minimum when an `INFO server` reply comes
 * from a Redis older than {@link MIN_REDIS_VERSION}. A reply without a version passes (a proxy that
 * hides it); the scripts then fail on their own if the server lacks something.
 */
export function assertSupportedRedis(info: string, address: string): void {
  const version = parseRedisVersion(info);
  if (version === undefined || isVersionAtLeast(version)) return;
  throw new StoreError(
    `redis: ${address} runs Redis ${version}; Sluice needs Redis ${MIN_REDIS_VERSION.replace(/\.0$/, '')} or newer`,
  );
}

/**
 * Asks the server for its version (`INFO server`, which also proves it answers) and fails with
 * {@link assertSupportedRedis}'s error when it is too old. A user whose ACL refuses `INFO` is not
 * refused here: the first script call tells.
 */
export async function checkServerVersion(client: RedisClient, address: string): Promise<void> {
  let info: string;
  try {
    info = await client.info('server');
  } catch (error) {
    if (error instanceof Error && /NOPERM/.test(error.message)) {
      await client.ping();
      return;
    }
    throw error;
  }
  assertSupportedRedis(info, address);
}
