--[[
  drain: deletes waiting jobs of a queue (ready, then those waiting in their groups, then scheduled),
  at most maxPerCall per call; the client calls again while some remain. A group whose turn or
  waiting jobs were deleted, or whose retry kept a slot, gets its state back in order (its slots
  held by running jobs stay); walking the groups costs O(groups) per call. Running and finished jobs are not touched. A deleted job's
  unique-key lock is deleted too if it still names that job, so the key can be used again at once.

  KEYS:
    1  priorities  zset  priorities that have ready jobs
    2  scheduled   zset  scheduled job ids by run-at

  ARGV:
    1  jobPrefix     prefix of job record keys
    2  readyPrefix   prefix of the per-priority ready lists
    3  uniquePrefix  prefix of unique-key locks
    4  maxPerCall    most jobs deleted by this call (≥ 1)
    5  groupPrefix   prefix of the group keys (includes/groups.lua)

  Returns:
    { deleted, remaining } where remaining is the number of ready and scheduled jobs left.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"
--- @include "includes/compact.lua"

local prioritiesKey, scheduledKey = KEYS[1], KEYS[2]
local jobPrefix, readyPrefix, uniquePrefix = ARGV[1], ARGV[2], ARGV[3]
local maxPerCall = tonumber(ARGV[4])
local groupPrefix = ARGV[5]
if #ARGV ~= 5 or not maxPerCall or maxPerCall < 1 then
  return -2
end

local deleted = 0
local touched = {}
local drop = function(id)
  local jobKey = jobPrefix .. id
  local f = redis.call('HMGET', jobKey, 'u', 'G', 'H')
  local unique = f[1]
  if unique and redis.call('GET', uniquePrefix .. unique) == id then
    redis.call('DEL', uniquePrefix .. unique)
  end
  if f[2] then
    local sk = groupPrefix .. 's:' .. f[2]
    touched[f[2]] = true
    if redis.call('HGET', sk, 't') == id then
      redis.call('HDEL', sk, 't', 'tp') -- its turn
    elseif f[3] then
      redis.call('HINCRBY', sk, 'r', -1) -- a retry keeping its slot
    end
  end
  -- Its record in either place (a compact one: includes/compact.lua).
  deleted = deleted + recordDelete(jobPrefix, { id })
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
  for _, g in ipairs(redis.call('ZRANGE', groupPrefix .. 'i', 0, -1)) do
    if budget <= 0 then
      break
    end
    local popped = redis.call('ZPOPMIN', groupPrefix .. 'w:' .. g, budget)
    if #popped > 0 then
      redis.call('DECRBY', groupPrefix .. 'n', #popped / 2)
      touched[g] = true
      for i = 1, #popped, 2 do
        drop(popped[i])
      end
      budget = budget - #popped / 2
    end
  end
end
if budget > 0 then
  local popped = redis.call('ZPOPMIN', scheduledKey, budget)
  for i = 1, #popped, 2 do
    drop(popped[i])
  end
end
-- A group left with waiting jobs (added meanwhile) gets its turn again; an empty one goes.
for g in pairs(touched) do
  groupRelease(groupPrefix, g, readyPrefix, prioritiesKey)
  groupTidy(groupPrefix, g)
end
return {
  deleted,
  readyCount(prioritiesKey, readyPrefix) + groupWaitingCount(groupPrefix) + redis.call('ZCARD', scheduledKey),
}
