/**
 * `@sluice/redis`: a durable, distributed `Store` on Redis and Redis Cluster.
 *
 * Every state change is one Lua script (`lua/<verb>-<keys>.lua`), every time comes from Redis `TIME`,
 * and all keys of a queue share one hash tag.
 */
export * from './redis-store';
export * from './connection';
export * from './keys';
export * from './errors';
export * from './delete-prefix';
export * from './demo-store';
export {
  SCRIPT_KEYS,
  SCRIPT_NAMES,
  LUA_DIR,
  loadScripts,
  type LoadedScript,
  type RedisClient,
  type ScriptName,
  type ScriptKeyName,
} from './scripts';
