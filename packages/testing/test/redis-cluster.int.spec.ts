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
    expect(found).toMatchObject({
      source: 'env',
      owned: false,
      servers: [],
      replicas: [],
      nodes: cluster.handle.nodes,
    });
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
  await expect(spawnRedisCluster({ replicas: -1 })).rejects.toThrow(/replicas/);
});

it('spawnRedisCluster with replicas: each master followed by one, promoted when its master dies', async () => {
  const handle = await spawnRedisCluster({ replicas: 1, nodeTimeoutMs: 1_000 });
  const client = new Cluster(clusterStartupNodes(handle), { redisOptions: { maxRetriesPerRequest: 1 } });
  client.on('error', () => undefined);
  try {
    expect(handle.nodes).toHaveLength(3);
    expect(handle.servers).toHaveLength(3);
    expect(handle.replicas).toHaveLength(3);
    const masterPorts = handle.nodes.map((n) => n.port).sort();
    expect(handle.replicas.map((r) => r.master.port).sort()).toEqual(masterPorts);
    // A write on a master reaches its replica.
    const key = 'replicated';
    await client.set(key, 'v');
    const slot = await client.cluster('KEYSLOT', key);
    const owner = client.slots[slot]![0]!;
    const master = handle.servers.find((s) => `${s.host}:${s.port}` === owner)!;
    const replica = handle.replicas.find((r) => r.master.port === master.port)!.server;
    const direct = new Redis(replica.port, replica.host);
    try {
      // The write is acknowledged by the master's one replica, and is there.
      const onMaster = client.nodes('master').find((n) => n.options.port === master.port)!;
      expect(await onMaster.wait(1, 5_000)).toBe(1);
      expect(/^role:slave/m.test(await direct.info('replication'))).toBe(true);
      expect(await direct.call('READONLY').then(() => direct.get(key))).toBe('v');
      await master.kill('SIGKILL');
      // The replica takes over the slot once the master is seen failed (node timeout) and wins the
      // election; the key is there.
      const deadline = Date.now() + 20_000;
      let role = '';
      while (Date.now() < deadline) {
        role = /^role:(\w+)/m.exec(await direct.info('replication'))?.[1] ?? '';
        if (role === 'master') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(role).toBe('master');
      expect(await direct.get(key)).toBe('v');
    } finally {
      direct.disconnect();
    }
  } finally {
    client.disconnect();
    await handle.stop();
  }
}, 60_000);

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
