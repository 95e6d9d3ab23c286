import type { Cluster, Redis } from 'ioredis';
import { InvalidArgumentError } from '@sluice/core';
import type { RedisClient } from './scripts';

/** Escapes the glob characters of a `SCAN MATCH` pattern. */
export function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (c) => `\\${c}`);
}

async function deleteOnNode(node: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await node.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) {
      // One UNLINK per key: in Cluster the keys of one scan page can live in different slots.
      const results = await Promise.all(keys.map((key) => node.unlink(key)));
      deleted += results.reduce((sum, n) => sum + n, 0);
    }
  } while (cursor !== '0');
  return deleted;
}

/**
 * Deletes every key whose name starts with `<prefix>:` (SCAN + UNLINK, on every master of a Cluster)
 * and returns how many were deleted. Only keys under that prefix are touched. Meant for tests, demos
 * and tearing down a deployment's keys; it walks the whole keyspace, so not for hot paths.
 *
 * ## Example
 * ```ts
 * await deleteKeysWithPrefix(store.client, store.keys.prefix);
 * ```
 */
export async function deleteKeysWithPrefix(client: RedisClient, prefix: string): Promise<number> {
  const base = prefix.endsWith(':') ? prefix.slice(0, -1) : prefix;
  if (base === '') throw new InvalidArgumentError('deleteKeysWithPrefix needs a non-empty prefix');
  const pattern = `${escapeGlob(base)}:*`;
  const nodes = client.isCluster ? (client as Cluster).nodes('master') : [client as Redis];
  const counts = await Promise.all(nodes.map((node) => deleteOnNode(node, pattern)));
  return counts.reduce((sum, n) => sum + n, 0);
}
