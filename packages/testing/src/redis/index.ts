/**
 * Real-Redis harness for tests.
 *
 * - `findRedis()`: `REDIS_URL` if set (used as is, never flushed) -> a testcontainers `redis:7` when a
 *   Docker engine answers within ~2 s -> a spawned `redis-server` from PATH on a free loopback port.
 *   `SLUICE_TEST_REDIS=spawn` skips Docker, `=container` requires it; `SLUICE_TEST_REDIS_IMAGE`
 *   overrides the image; `SLUICE_REDIS_SERVER` / `SLUICE_REDIS_CLI` override the binaries.
 * - `spawnRedis()`: always a private `redis-server` with fault controls (kill/restart/pause/resume).
 * - `spawnRedisCluster()` / `findRedisCluster()` (`REDIS_CLUSTER_NODES`): a 3-master cluster.
 * - `useRedis()` / `useSpawnedRedis()` / `useRedisCluster()`: the same as Jest `beforeAll`/`afterAll` fixtures.
 * - `uniquePrefix()`: per-test key prefixes, so tests sharing a server never collide.
 *
 * Spawned servers are killed and their temp dirs removed by `stop()`, and as a last resort when the
 * test process exits, is signalled, or dies (a watchdog).
 */
export type {
  RedisClusterHandle,
  RedisNodeAddress,
  RedisServerHandle,
  RedisSource,
  SpawnedRedis,
} from './types';
export { findRedis, uniquePrefix } from './find-redis';
export type { FindRedisOptions, RedisMode } from './find-redis';
export { spawnRedis } from './redis-server';
export type { RedisConfigValue, SpawnRedisOptions } from './redis-server';
export { clusterStartupNodes, findRedisCluster, parseClusterNodes, spawnRedisCluster } from './redis-cluster';
export type { FindRedisClusterOptions, SpawnRedisClusterOptions } from './redis-cluster';
export { isDockerAvailable, startRedisContainer } from './docker';
export type { DockerCheckOptions, RedisContainerOptions } from './docker';
export { getFreePort, isPortFree } from './free-port';
export { useRedis, useRedisCluster, useSpawnedRedis } from './jest';
export type { HookOptions, RedisClusterFixture, RedisFixture } from './jest';
