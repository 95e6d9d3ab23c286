--[[
  remove-job: deletes a job that is not running, from whichever structure holds it.

  KEYS:
    1  priorities  zset  priorities that have ready jobs
    2  scheduled   zset  scheduled job ids by run-at
    3  active      zset  lease tokens by deadline (includes/leases.lua)
    4  dead        list  dead-letter ids, newest first
    5  finished    list  completed and cancelled jobs, newest first (includes/finished.lua)
    6  counters    hash  counts (nc, nx)

  ARGV:
    1  jobPrefix    prefix of job record keys
    2  readyPrefix  prefix of the per-priority ready lists
    3  id           the job
    4  groupPrefix  prefix of the group keys (includes/groups.lua): a waiting job of a group leaves
                    its group, a retry keeping its group slot gives it back

  Returns:
    1 deleted, 0 no such job or it is running

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"
--- @include "includes/state.lua"
--- @include "includes/finished.lua"

local prioritiesKey, scheduledKey, activeKey, deadKey, finishedKey, countersKey =
  KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
if #ARGV ~= 4 then
  return -2
end
local jobPrefix, readyPrefix, id, groupPrefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local jobKey = jobPrefix .. id
local state, priority = jobState(jobPrefix, id, activeKey, scheduledKey)
if not state or state == 'a' then
  return 0
end
recordOwn(jobPrefix, id) -- read and deleted below as a hash of its own
local g = redis.call('HMGET', jobKey, 'G', 'H')
if state == 'w' and g[1] then
  groupRemove(groupPrefix, g[1], id, priority, readyPrefix, prioritiesKey)
elseif state == 'w' then
  readyRemove(readyPrefix, prioritiesKey, priority, id)
elseif state == 's' then
  redis.call('ZREM', scheduledKey, id)
  if g[1] and g[2] then
    groupFree(groupPrefix, g[1], readyPrefix, prioritiesKey)
  end
elseif state == 'd' then
  redis.call('LREM', deadKey, 1, id)
else
  if redis.call('LREM', finishedKey, 1, state .. id) == 0 and state == 'c' then
    finishedRemoveFromRun(finishedKey, countersKey, activeKey, id)
  end
  redis.call('HINCRBY', countersKey, state == 'c' and 'nc' or 'nx', -1)
  if state == 'c' then
    redis.call('HDEL', finishedIndexKey(activeKey), id)
  end
end
redis.call('DEL', jobKey)
return 1
