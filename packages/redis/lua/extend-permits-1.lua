--[[
  extend-permits: moves the expiry of held permits (acquire-permits) to leaseMs after now, as a
  lease extension does for its jobs. A permit already expired (or given back) is not taken again.

  KEYS:
    1  permits  zset  held permit ids by expiry (store time)

  ARGV:
    1  leaseMs  the permits' new life
    2  count    number of permit ids
    3… the permit ids

  Returns:
    the ids still held, now extended

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"

local permitsKey = KEYS[1]
local leaseMs, count = tonumber(ARGV[1]), tonumber(ARGV[2])
if not leaseMs or not count or leaseMs < 1 or #ARGV ~= 2 + count then
  return -2
end
local now = storeNow()
local kept = {}
for i = 3, #ARGV do
  local expires = tonumber(redis.call('ZSCORE', permitsKey, ARGV[i]))
  if expires and expires > now then
    redis.call('ZADD', permitsKey, now + leaseMs, ARGV[i])
    kept[#kept + 1] = ARGV[i]
  end
end
return kept
