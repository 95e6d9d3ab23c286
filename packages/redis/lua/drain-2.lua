--[[
  drain: deletes waiting jobs of a queue (ready, then scheduled), at most maxPerCall per call; the
  client calls again while some remain. Running and finished jobs are not touched. A deleted job's
  unique-key lock is deleted too if it still names that job, so the key can be used again at once.

  KEYS:
    1  priorities  zset  priorities that have ready jobs
    2  scheduled   zset  scheduled job ids by run-at

  ARGV:
    1  jobPrefix     prefix of job record keys
    2  readyPrefix   prefix of the per-priority ready lists
    3  uniquePrefix  prefix of unique-key locks
    4  maxPerCall    most jobs deleted by this call (≥ 1)

  Returns:
    { deleted, remaining } where remaining is the number of ready and scheduled jobs left.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/ready.lua"

local prioritiesKey, scheduledKey = KEYS[1], KEYS[2]
local jobPrefix, readyPrefix, uniquePrefix = ARGV[1], ARGV[2], ARGV[3]
local maxPerCall = tonumber(ARGV[4])
if #ARGV ~= 4 or not maxPerCall or maxPerCall < 1 then
  return -2
end

local deleted = 0
local drop = function(id)
  local jobKey = jobPrefix .. id
  local unique = redis.call('HGET', jobKey, 'u')
  if unique and redis.call('GET', uniquePrefix .. unique) == id then
    redis.call('DEL', uniquePrefix .. unique)
  end
  deleted = deleted + redis.call('DEL', jobKey)
end

local budget = maxPerCall
while budget > 0 do
  local ids = readyPop(prioritiesKey, readyPrefix, budget)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    drop(id)
  end
  budget = budget - #ids
end
if budget > 0 then
  local popped = redis.call('ZPOPMIN', scheduledKey, budget)
  for i = 1, #popped, 2 do
    drop(popped[i])
  end
end
return { deleted, readyCount(prioritiesKey, readyPrefix) + redis.call('ZCARD', scheduledKey) }
