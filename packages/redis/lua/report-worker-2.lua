--[[
  report-worker: records that a worker is alive, with what it runs, until ttlMs from now; reports whose
  time ran out are removed on the way.

  KEYS:
    1  workerInfo    hash  worker id → "<last seen (store ms)>|<report JSON>"
    2  workerExpiry  zset  worker ids by the time their report expires

  ARGV:
    1  id     the worker's id
    2  json   its report (without the last-seen time, which is the store's now)
    3  ttlMs  how long the report lives

  Returns:
    the store's now

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"

local infoKey, expiryKey = KEYS[1], KEYS[2]
local id, json, ttlMs = ARGV[1], ARGV[2], tonumber(ARGV[3])
if #ARGV ~= 3 or not ttlMs then
  return -2
end
local now = storeNow()
local expired = redis.call('ZRANGEBYSCORE', expiryKey, '-inf', now, 'LIMIT', 0, 100)
for _, gone in ipairs(expired) do
  redis.call('HDEL', infoKey, gone)
  redis.call('ZREM', expiryKey, gone)
end
redis.call('HSET', infoKey, id, now .. '|' .. json)
redis.call('ZADD', expiryKey, now + ttlMs, id)
return now
