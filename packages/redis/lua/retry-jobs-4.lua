--[[
  retry-jobs: moves dead (or cancelled) jobs back to the ready lists with a fresh set of attempts; the
  error history is kept. Either the ids given, or every dead job oldest first (at most maxPerCall per
  call; `more` says whether dead jobs remain).

  KEYS:
    1  priorities  zset  priorities that have ready jobs
    2  dead        list  dead-letter ids, newest first
    3  finished    list  completed and cancelled jobs, newest first (includes/finished.lua)
    4  counters    hash  counts (nx)

  ARGV:
    1  jobPrefix    prefix of job record keys
    2  readyPrefix  prefix of the per-priority ready lists
    3  wakeChannel  channel told when jobs were put back
    4  mode         ids | all-dead
    5  maxPerCall   most jobs moved by an all-dead call
    6  groupPrefix  prefix of the group keys (includes/groups.lua): a job of a group goes to the
                    back of its group
    7… ids (mode ids)

  Returns:
    { moved, more (0 | 1) }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"
--- @include "includes/publish.lua"
--- @include "includes/compact.lua"

local prioritiesKey, deadKey, finishedKey, countersKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local jobPrefix, readyPrefix, wakeChannel, mode = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local maxPerCall = tonumber(ARGV[5])
local groupPrefix = ARGV[6]
if not maxPerCall or not groupPrefix or (mode ~= 'ids' and mode ~= 'all-dead') or (mode == 'all-dead' and #ARGV ~= 6) then
  return -2
end

local now = storeNow()
local batch = readyBatch()
local moved, uncancelled, more = 0, 0, 0
local revive = function(jobKey, id, priority, group)
  recordOwn(jobPrefix, id) -- its record is written: a compact one becomes its own hash
  redis.call('HDEL', jobKey, 's', 'x', 'f', 'a', 'k', 'H')
  redis.call('HSET', jobKey, 'y', now)
  if group then
    groupPush(groupPrefix, group, priority, id, false, readyPrefix, prioritiesKey)
  else
    readyAdd(batch, priority, id)
  end
  moved = moved + 1
end

if mode == 'ids' then
  for i = 7, #ARGV do
    local id = ARGV[i]
    local jobKey = jobPrefix .. id
    local f = redis.call('HMGET', jobKey, 's', 'p', 'G')
    if f[1] == 'd' then
      redis.call('LREM', deadKey, 1, id)
      revive(jobKey, id, f[2], f[3])
    elseif f[1] == 'x' then
      redis.call('LREM', finishedKey, 1, 'x' .. id)
      uncancelled = uncancelled + 1
      revive(jobKey, id, f[2], f[3])
    end
  end
else
  local ids = redis.call('RPOP', deadKey, maxPerCall) or {}
  for _, id in ipairs(ids) do
    local jobKey = jobPrefix .. id
    local f = redis.call('HMGET', jobKey, 's', 'p', 'G')
    if f[1] == 'd' then
      revive(jobKey, id, f[2], f[3])
    end
  end
  if redis.call('EXISTS', deadKey) == 1 then
    more = 1
  end
end

readyFlush(batch, readyPrefix, prioritiesKey)
if uncancelled > 0 then
  redis.call('HINCRBY', countersKey, 'nx', -uncancelled)
end
if moved > 0 then
  publish(wakeChannel, '')
end
return { moved, more }
