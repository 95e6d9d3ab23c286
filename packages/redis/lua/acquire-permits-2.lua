--[[
  acquire-permits: takes up to `count` permits of a cap of `max` held at once for a queue, a
  semaphore kept with the leases: each permit expires leaseMs after now unless extended
  (extend-permits), so a crashed worker's permits come back when its leases would. Expired permits
  are dropped first. For jobs leased by other calls: a partitioned queue's partitions live in other
  slots, so its global concurrency is kept here, on the queue's own slot (PartitionedStore).

  KEYS:
    1  permits   zset  held permit ids by expiry (store time)
    2  counters  hash  sequences (pm: permit ids)

  ARGV:
    1  max      permits held at once, at most
    2  count    permits wanted
    3  leaseMs  a permit's life unless extended

  Returns:
    { now, granted, lastId } (the permits granted are lastId - granted + 1 … lastId)

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"

local permitsKey, countersKey = KEYS[1], KEYS[2]
local max, count, leaseMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
if #ARGV ~= 3 or not max or not count or not leaseMs or max < 0 or count < 0 or leaseMs < 1 then
  return -2
end
local now = storeNow()
redis.call('ZREMRANGEBYSCORE', permitsKey, '-inf', now)
local granted = math.max(0, math.min(count, max - redis.call('ZCARD', permitsKey)))
if granted == 0 then
  return { now, 0, 0 }
end
local last = redis.call('HINCRBY', countersKey, 'pm', granted)
local entries = {}
for id = last - granted + 1, last do
  entries[#entries + 1] = now + leaseMs
  entries[#entries + 1] = id
end
redis.call('ZADD', permitsKey, unpack(entries))
return { now, granted, last }
