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
    5  groupPrefix  prefix of the group keys (includes/groups.lua): a job of a group goes to its
                    group (a retry keeping its group slot to the front, giving the slot back)

  Returns:
    1 promoted, 0 the job is not scheduled

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"
--- @include "includes/promote.lua"
--- @include "includes/publish.lua"
--- @include "includes/compact.lua"

local scheduledKey, prioritiesKey = KEYS[1], KEYS[2]
if #ARGV ~= 5 then
  return -2
end
local jobPrefix, readyPrefix, wakeChannel, id, groupPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local jobKey = jobPrefix .. id
recordOwn(jobPrefix, id) -- its record is written: a compact one becomes its own hash
if redis.call('ZREM', scheduledKey, id) == 0 then
  return 0
end
local f = redis.call('HMGET', jobKey, 'c', 'p', 'G', 'H')
if not f[1] then
  return 0
end
local now = storeNow()
redis.call('HSET', jobKey, 'r', now)
redis.call('HDEL', jobKey, 'y')
if f[3] then
  promoteOne(jobPrefix, readyPrefix, prioritiesKey, groupPrefix, id, f[2], f[3], f[4] == '1')
else
  readyPush(readyPrefix, prioritiesKey, f[2], id)
end
publish(wakeChannel, '')
return 1
