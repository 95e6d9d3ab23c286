import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

import { getFreeClusterPort } from './free-port';
import { launchRedis } from './redis-server';
import type { SpawnRedisOptions } from './redis-server';
import { sendCommands } from './resp';
import type { RedisClusterHandle, RedisNodeAddress, SpawnedRedis } from './types';

const SLOTS = 16_384;

export interface SpawnRedisClusterOptions {
  /** Number of masters (default 3, at least 3: `redis-cli --cluster create` needs three). */
  readonly masters?: number;
  /** Replicas of each master (default 0): a master's failure then promotes one of them. */
  readonly replicas?: number;
  /** `cluster-node-timeout` in ms (default 2 000). */
  readonly nodeTimeoutMs?: number;
  /** Options for every node (`port` is not allowed: each node gets a free one). */
  readonly node?: Omit<SpawnRedisOptions, 'port'>;
  /** The redis-cli binary. Default: `$SLUICE_REDIS_CLI` or `redis-cli` from PATH. */
  readonly redisCliPath?: string;
  /** Budget for creating the cluster and waiting for `cluster_state:ok` (default 30 000 ms). */
  readonly startTimeoutMs?: number;
}

export interface FindRedisClusterOptions extends SpawnRedisClusterOptions {
  /** Environment to read `REDIS_CLUSTER_NODES` from (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv;
}

function run(file: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { timeout: timeoutMs, encoding: 'utf8' }, (error, stdout, stderr) => {
      if (error) {
        const code = (error as NodeJS.ErrnoException).code;
        reject(
          new Error(
            code === 'ENOENT'
              ? `'${file}' not found: install Redis (redis-cli on PATH) or set SLUICE_REDIS_CLI`
              : `${file} ${args.join(' ')} failed: ${error.message}\n${stdout}\n${stderr}`,
          ),
        );
      } else {
        resolve(stdout);
      }
    });
  });
}

function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1).trim());
  }
  return fields;
}

/** `CLUSTER INFO` and `INFO replication` of a node, parsed; undefined when it does not answer. */
async function nodeInfo(
  node: RedisNodeAddress,
  password: string | undefined,
): Promise<{ cluster: Map<string, string>; replication: Map<string, string> } | undefined> {
  const auth = password === undefined ? [] : [['AUTH', password]];
  try {
    const replies = await sendCommands(
      node.host,
      node.port,
      [...auth, ['CLUSTER', 'INFO'], ['INFO', 'replication']],
      1_000,
    );
    const [cluster, replication] = replies.slice(-2);
    if (typeof cluster !== 'string' || typeof replication !== 'string') return undefined;
    return { cluster: parseInfo(cluster), replication: parseInfo(replication) };
  } catch {
    return undefined;
  }
}

async function clusterReady(
  node: RedisNodeAddress,
  known: number,
  password: string | undefined,
): Promise<boolean> {
  const info = await nodeInfo(node, password);
  if (!info) return false;
  const { cluster, replication } = info;
  return (
    cluster.get('cluster_state') === 'ok' &&
    cluster.get('cluster_slots_assigned') === String(SLOTS) &&
    cluster.get('cluster_slots_ok') === String(SLOTS) &&
    Number(cluster.get('cluster_known_nodes')) >= known &&
    // A replica counts once it has its master's data and follows it.
    (replication.get('role') !== 'slave' || replication.get('master_link_status') === 'up')
  );
}

/** The master a node replicates, or undefined for a master. */
async function masterOf(
  node: RedisNodeAddress,
  password: string | undefined,
): Promise<RedisNodeAddress | undefined> {
  const replication = (await nodeInfo(node, password))?.replication;
  if (replication?.get('role') !== 'slave') return undefined;
  return { host: replication.get('master_host') ?? '', port: Number(replication.get('master_port')) };
}

/** Waits until every node reports `cluster_state:ok` with all 16384 slots assigned. */
async function waitForClusterOk(
  nodes: readonly RedisNodeAddress[],
  password: string | undefined,
  deadline: number,
): Promise<void> {
  for (;;) {
    const ready = await Promise.all(nodes.map((node) => clusterReady(node, nodes.length, password)));
    if (ready.every(Boolean)) return;
    if (Date.now() > deadline) {
      throw new Error(
        `redis cluster ${nodes.map((n) => `${n.host}:${n.port}`).join(',')} did not reach cluster_state:ok`,
      );
    }
    await sleep(50);
  }
}

/**
 * Spawns `masters × (1 + replicas)` redis-server nodes in cluster mode (free ports whose bus port
 * `+10000` is free too, one temp dir each), joins them with
 * `redis-cli --cluster create ... --cluster-replicas <replicas>`, and resolves once every node reports
 * `cluster_state:ok` with all 16384 slots assigned and every replica follows its master.
 */
export async function spawnRedisCluster(options: SpawnRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const masters = options.masters ?? 3;
  if (!Number.isInteger(masters) || masters < 3)
    throw new Error('spawnRedisCluster: masters must be an integer >= 3');
  const replicas = options.replicas ?? 0;
  if (!Number.isInteger(replicas) || replicas < 0)
    throw new Error('spawnRedisCluster: replicas must be an integer >= 0');
  const startTimeoutMs = options.startTimeoutMs ?? 30_000;
  const deadline = Date.now() + startTimeoutMs;
  const nodeOptions: SpawnRedisOptions = options.node ?? {};
  const password = nodeOptions.requirepass;
  const launch = {
    pickPort: () => getFreeClusterPort(),
    extraConfig: {
      'cluster-enabled': true,
      'cluster-config-file': 'nodes.conf',
      'cluster-node-timeout': options.nodeTimeoutMs ?? 2_000,
    },
  };

  const started = await Promise.allSettled(
    Array.from({ length: masters * (1 + replicas) }, () => launchRedis(nodeOptions, launch)),
  );
  const servers = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= Promise.all(servers.map((s) => s.stop())).then(() => undefined);
    return stopping;
  };
  const failure = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failure) {
    await stop();
    throw failure.reason;
  }

  const all: RedisNodeAddress[] = servers.map((s) => ({ host: s.host, port: s.port }));
  const masterServers: SpawnedRedis[] = [];
  const replicaServers: { server: SpawnedRedis; master: RedisNodeAddress }[] = [];
  try {
    const cli = options.redisCliPath ?? process.env['SLUICE_REDIS_CLI'] ?? 'redis-cli';
    const auth = password === undefined ? [] : ['-a', password, '--no-auth-warning'];
    await run(
      cli,
      [
        ...auth,
        '--cluster',
        'create',
        ...all.map((n) => `${n.host}:${n.port}`),
        '--cluster-replicas',
        String(replicas),
        '--cluster-yes',
      ],
      Math.max(1_000, deadline - Date.now()),
    );
    await waitForClusterOk(all, password, deadline);
    for (const server of servers) {
      const master = await masterOf(server, password);
      if (master) replicaServers.push({ server, master });
      else masterServers.push(server);
    }
    if (masterServers.length !== masters) {
      throw new Error(`redis cluster: expected ${masters} masters, found ${masterServers.length}`);
    }
  } catch (error) {
    await stop();
    throw error;
  }
  const nodes = masterServers.map((s) => ({ host: s.host, port: s.port }));
  return { nodes, source: 'spawned', owned: true, servers: masterServers, replicas: replicaServers, stop };
}

/** Parses `host:port,host:port` (IPv6 as `[::1]:7000`). */
export function parseClusterNodes(spec: string): RedisNodeAddress[] {
  return spec
    .split(',')
    .map((part) => part.trim())
    .filter((part) => part !== '')
    .map((part) => {
      const colon = part.lastIndexOf(':');
      const host = part.slice(0, colon).replace(/^\[|\]$/g, '');
      const port = Number(part.slice(colon + 1));
      if (colon <= 0 || host === '' || !Number.isInteger(port) || port <= 0 || port > 65_535) {
        throw new Error(`REDIS_CLUSTER_NODES: expected host:port, got ${JSON.stringify(part)}`);
      }
      return { host, port };
    });
}

/**
 * `REDIS_CLUSTER_NODES` (comma-separated `host:port`, an existing cluster used as is, `owned: false`)
 * when set, else `spawnRedisCluster(options)`.
 */
export async function findRedisCluster(options: FindRedisClusterOptions = {}): Promise<RedisClusterHandle> {
  const spec = (options.env ?? process.env)['REDIS_CLUSTER_NODES'];
  if (spec !== undefined && spec.trim() !== '') {
    const nodes = parseClusterNodes(spec);
    return { nodes, source: 'env', owned: false, servers: [], replicas: [], stop: () => Promise.resolve() };
  }
  return spawnRedisCluster(options);
}

/** Startup nodes for `new Cluster(clusterStartupNodes(handle))` (ioredis). */
export function clusterStartupNodes(cluster: RedisClusterHandle): { host: string; port: number }[] {
  return cluster.nodes.map(({ host, port }) => ({ host, port }));
}
