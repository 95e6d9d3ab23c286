/**
 * `@sluice/redis`: a durable, distributed `Store` on Redis and Redis Cluster.
 *
 * Every state change is one Lua script (`lua/<verb>-<keys>.lua`), every time comes from Redis `TIME`,
 * and all keys of a queue share one hash tag.
 */
export { RedisStore } from './redis-store';
export type { RedisStoreOptions } from './redis-store';
export type { RedisConnection } from './connection';
export { openDemoStore } from './demo-store';
export {
  assertSupportedRedis,
  isVersionAtLeast,
  MIN_REDIS_VERSION,
  parseRedisVersion,
} from './server-version';
export { deleteKeysWithPrefix } from './delete-prefix';
export { NotReplicatedError, RedisScriptError, ScriptErrorCode } from './errors';
export { KeyBuilder } from './keys';
export { CLUSTER_SLOTS, keySlot, partitionTag } from './slots';
export type { QueueKeyMap, QueueKeyName, QueueKeys } from './keys';
export { LUA_DIR, SCRIPT_KEYS, SCRIPT_NAMES, loadScripts } from './scripts';
export type { LoadedScript, RedisClient, ScriptKeyName, ScriptName } from './scripts';
