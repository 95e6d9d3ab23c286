import { existsSync } from 'node:fs';

import { Cluster, Redis } from 'ioredis';

import {
  clusterStartupNodes,
  findRedisCluster,
  isPortFree,
  parseClusterNodes,
  spawnRedisCluster,
  uniquePrefix,
  useRedisCluster,
} from '../src/redis';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One cluster for the whole file: starting one takes ~2 s (Redis waits 2 s before a new master is ok). */
describe('spawnRedisCluster (via useRedisCluster)', () => {
  const cluster = useRedisCluster({ env: {} });

  it('starts 3 masters, all reporting cluster_state:ok with every slot assigned', async () => {
    const { handle } = cluster;
    expect(handle).toMatchObject({ source: 'spawned', owned: true });
    expect(handle.nodes).toHaveLength(3);
    expect(handle.servers).toHaveLength(3);
    expect(new Set(handle.nodes.map((n) => n.port)).size).toBe(3);
    expect(handle.servers.map((s) => s.port)).toEqual(handle.nodes.map((n) => n.port));

    for (const node of handle.nodes) {
      const direct = new Redis(node.port, node.host);
      try {
        const info = await direct.cluster('INFO');
        expect(info).toMatch(/cluster_state:ok/);
        expect(info).toMatch(/cluster_slots_assigned:16384/);
        expect(info).toMatch(/cluster_known_nodes:3/);
        expect(info).toMatch(/cluster_size:3/);
      } finally {
        direct.disconnect();
      }
    }
  });

  it('serves an ioredis Cluster client across slots and masters', async () => {
    const client = new Cluster(clusterStartupNodes(cluster.handle));
    try {
      const prefix = uniquePrefix('cluster');
      const keys = Array.from({ length: 30 }, (_, i) => `${prefix}${i}`);
      const slots = new Set<number>();
      for (const key of keys) slots.add(await client.cluster('KEYSLOT', key));
      expect(slots.size).toBeGreaterThan(3);
      for (const key of keys) await client.set(key, `v-${key}`);
      for (const key of keys) expect(await client.get(key)).toBe(`v-${key}`);

      const masters = client.nodes('master');
      expect(masters).toHaveLength(3);
      const sizes = await Promise.all(masters.map((node) => node.dbsize()));
      for (const size of sizes) expect(size).toBeGreaterThan(0); // the keys landed on every master
    } finally {
      client.disconnect();
    }
  });

  it('uses REDIS_CLUSTER_NODES as is (not owned, stop() is a no-op)', async () => {
    const spec = cluster.handle.nodes.map((n) => `${n.host}:${n.port}`).join(', ');
    const found = await findRedisCluster({ env: { REDIS_CLUSTER_NODES: spec } });
    expect(found).toMatchObject({ source: 'env', owned: false, servers: [], nodes: cluster.handle.nodes });
    await found.stop();
    expect(cluster.handle.servers.every((s) => s.running)).toBe(true);
  });

  // Last on purpose: stops the fixture's cluster (the fixture's own afterAll stop() is then a no-op).
  it('stops cleanly: processes gone, dirs removed, ports and bus ports free', async () => {
    const { handle } = cluster;
    await handle.stop();
    for (const server of handle.servers) {
      expect(alive(server.pid)).toBe(false);
      expect(existsSync(server.dir)).toBe(false);
    }
    for (const node of handle.nodes) {
      expect(await isPortFree(node.port)).toBe(true);
      expect(await isPortFree(node.port + 10_000)).toBe(true);
    }
    await handle.stop();
  });
});

it('spawnRedisCluster rejects fewer than 3 masters', async () => {
  await expect(spawnRedisCluster({ masters: 2 })).rejects.toThrow(/masters/);
});

describe('parseClusterNodes', () => {
  it('parses host:port lists, IPv6 included, and rejects garbage', () => {
    expect(parseClusterNodes('127.0.0.1:7000,redis-2:7001, [::1]:7002')).toEqual([
      { host: '127.0.0.1', port: 7000 },
      { host: 'redis-2', port: 7001 },
      { host: '::1', port: 7002 },
    ]);
    expect(() => parseClusterNodes('localhost')).toThrow(/host:port/);
    expect(() => parseClusterNodes('localhost:http')).toThrow(/host:port/);
  });
});
