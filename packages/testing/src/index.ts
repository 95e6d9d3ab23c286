/**
 * `@sluice/testing`: marble tests of whole pipelines, the store-contract suite, and a harness that
 * finds or starts a real Redis.
 */
export { ManualClock } from './manual-clock';
export { AHEAD_NICE, AHEAD_RT_PRIORITY, parseProcessPriority, priorityFromEnv, runAhead } from './priority';
export type { ProcessPriority } from './priority';
export { describeOutcome, pipelineHarness } from './pipeline-harness';
export type { EnqueueItem, PipelineHarness, PipelineHarnessOptions } from './pipeline-harness';
export { defineStoreContract, memoryStoreFixture } from './store-contract';
export { definePartitionContract } from './store-contract-partitions';
export type { StoreContractOptions, StoreFixture } from './store-contract';
export { defineGroupContract } from './store-contract-groups';
export type { GroupContractContext } from './store-contract-groups';
export {
  clusterStartupNodes,
  findRedis,
  findRedisCluster,
  getFreePort,
  isDockerAvailable,
  isPortFree,
  parseClusterNodes,
  spawnRedis,
  spawnRedisCluster,
  startRedisContainer,
  uniquePrefix,
  useRedis,
  useRedisCluster,
  useSpawnedRedis,
} from './redis';
export type {
  DockerCheckOptions,
  FindRedisClusterOptions,
  FindRedisOptions,
  HookOptions,
  RedisClusterFixture,
  RedisClusterHandle,
  RedisConfigValue,
  RedisContainerOptions,
  RedisFixture,
  RedisMode,
  RedisNodeAddress,
  RedisServerHandle,
  RedisSource,
  SpawnedRedis,
  SpawnRedisClusterOptions,
  SpawnRedisOptions,
} from './redis';
