--[[
  workers: the reports of live workers; expired ones are removed first.

  KEYS:
    1  workerInfo    hash  worker id → "<last seen (store ms)>|<report JSON>"
    2  workerExpiry  zset  worker ids by the time their report expires

  ARGV:
    1  maxExpired  most expired reports removed by this call

  Returns:
    { id1, report1, id2, report2, ... } (HGETALL of the live reports)

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"

local infoKey, expiryKey = KEYS[1], KEYS[2]
local maxExpired = tonumber(ARGV[1])
if #ARGV ~= 1 or not maxExpired then
  return -2
end
local now = storeNow()
local expired = redis.call('ZRANGEBYSCORE', expiryKey, '-inf', now, 'LIMIT', 0, maxExpired)
for _, gone in ipairs(expired) do
  redis.call('HDEL', infoKey, gone)
  redis.call('ZREM', expiryKey, gone)
end
return redis.call('HGETALL', infoKey)
