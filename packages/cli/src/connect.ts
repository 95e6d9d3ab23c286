import { MAX_PARTITIONS, PartitionedStore, type Store } from '@sluice/core';
import { RedisStore } from '@sluice/redis';
import { CliError } from './io';

export interface ConnectOptions {
  /** `--redis`; default `REDIS_URL`, then `redis://127.0.0.1:6379`. */
  readonly redis?: string;
  /**
   * `--cluster`: startup nodes of a Redis Cluster, `host:port[,host:port…]` (default
   * `REDIS_CLUSTER_NODES`); credentials and TLS then come from `--redis` (its host is not used).
   */
  readonly cluster?: string;
  /** `--prefix`; default `sluice`. */
  readonly prefix?: string;
  /**
   * `--partitions`: partitioned queues and their counts, `queue=n[,queue=n…]` (default
   * `SLUICE_PARTITIONS`): commands see each as one queue (see `PartitionedStore`).
   */
  readonly partitions?: string;
}

/** The partitioned queues of `--partitions` (or `SLUICE_PARTITIONS`), validated; `{}` without any. */
export function partitionCounts(options: ConnectOptions): Record<string, number> {
  const spec = options.partitions ?? (process.env['SLUICE_PARTITIONS'] || undefined);
  const counts: Record<string, number> = {};
  if (spec === undefined) return counts;
  for (const part of spec.split(',')) {
    const match = /^\s*([^=\s]+)\s*=\s*(\d+)\s*$/.exec(part);
    const count = Number(match?.[2]);
    if (!match?.[1] || !(count >= 1 && count <= MAX_PARTITIONS)) {
      throw new CliError(
        `invalid partitions "${part.trim()}": expected queue=n[,queue=n…] with n from 1 to ${MAX_PARTITIONS}`,
        2,
      );
    }
    counts[match[1]] = count;
  }
  return counts;
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

/** The startup nodes of `--cluster` (or `REDIS_CLUSTER_NODES`), validated; `undefined` without one. */
export function clusterNodes(options: ConnectOptions): { host: string; port: number }[] | undefined {
  const spec = options.cluster ?? (process.env['REDIS_CLUSTER_NODES'] || undefined);
  if (spec === undefined) return undefined;
  const nodes = spec.split(',').map((part) => {
    const match = /^\s*(\[[^\]]+\]|[^:\s]+):(\d{1,5})\s*$/.exec(part);
    const port = Number(match?.[2]);
    if (!match?.[1] || !(port >= 1 && port <= 65535)) {
      throw new CliError(`invalid cluster node "${part.trim()}": expected host:port[,host:port…]`, 2);
    }
    return { host: match[1].replace(/^\[|\]$/g, ''), port };
  });
  return nodes;
}

/**
 * Connects to Redis, failing fast with one clear line when nothing answers; partitioned queues
 * (`--partitions`) are seen through a `PartitionedStore`.
 */
export async function openStore(options: ConnectOptions): Promise<Store> {
  const partitions = partitionCounts(options);
  const store = await openRedisStore(options);
  if (Object.keys(partitions).length === 0) return store;
  try {
    return new PartitionedStore(store, { partitions });
  } catch (err) {
    await store.close();
    throw new CliError((err as Error).message, 2);
  }
}

async function openRedisStore(options: ConnectOptions): Promise<Store> {
  const nodes = clusterNodes(options);
  if (nodes) return openClusterStore(nodes, options);
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

/** Connects to a Redis Cluster from its startup nodes; credentials and TLS from `--redis` if given. */
async function openClusterStore(
  nodes: { host: string; port: number }[],
  options: ConnectOptions,
): Promise<Store> {
  const where = nodes.map((n) => `${n.host}:${n.port}`).join(',');
  const credentials: { username?: string; password?: string; tls?: object } = {};
  if (options.redis !== undefined) {
    const url = new URL(redisUrl(options));
    if (url.username) credentials.username = decodeURIComponent(url.username);
    if (url.password) credentials.password = decodeURIComponent(url.password);
    if (url.protocol === 'rediss:') credentials.tls = {};
  }
  try {
    return await RedisStore.connect({
      connection: { cluster: { nodes, options: { redisOptions: credentials } } },
      ...(options.prefix ? { prefix: options.prefix } : {}),
      connectTimeoutMs: 3000,
    });
  } catch (err) {
    throw new CliError(`cannot connect to the Redis Cluster at ${where}: ${(err as Error).message}`);
  }
}
