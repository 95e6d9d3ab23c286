--[[
  promote-job: makes one scheduled job due now (its run-at becomes the store's now).

  KEYS:
    1  scheduled   zset  scheduled job ids by run-at
    2  priorities  zset  priorities that have ready jobs

  ARGV:
    1  jobPrefix    prefix of job record keys
    2  readyPrefix  prefix of the per-priority ready lists
    3  wakeChannel  channel told when jobs became ready
    4  id           the job

  Returns:
    1 promoted, 0 the job is not scheduled

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"

local scheduledKey, prioritiesKey = KEYS[1], KEYS[2]
if #ARGV ~= 4 then
  return -2
end
local jobPrefix, readyPrefix, wakeChannel, id = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local jobKey = jobPrefix .. id
if redis.call('ZREM', scheduledKey, id) == 0 then
  return 0
end
local f = redis.call('HMGET', jobKey, 'c', 'p')
if not f[1] then
  return 0
end
local now = storeNow()
redis.call('HSET', jobKey, 'r', now)
redis.call('HDEL', jobKey, 'y')
readyPush(readyPrefix, prioritiesKey, f[2], id)
redis.call('PUBLISH', wakeChannel, '')
return 1
