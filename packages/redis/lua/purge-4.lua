--[[
  purge: deletes every job in one terminal state. Dead jobs go at most maxPerCall per call, oldest
  first (`more` says whether some remain); completed or cancelled jobs are split out of the finished
  list in one pass (retention keeps that list short).

  KEYS:
    1  dead      list  dead-letter ids, newest first
    2  finished  list  completed and cancelled jobs, newest first (includes/finished.lua)
    3  counters  hash  counts (nc, nx)
    4  active    zset  lease tokens by deadline: its finished index and ranges (includes/leases.lua)
                       lose the entries of the completed jobs purged

  ARGV:
    1  jobPrefix   prefix of job record keys
    2  state       dead | completed | cancelled
    3  maxPerCall  most dead jobs deleted by this call

  Returns:
    { deleted, more (0 | 1) }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/chunked.lua"
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"
--- @include "includes/finished.lua"

local deadKey, finishedKey, countersKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local jobPrefix, state = ARGV[1], ARGV[2]
local maxPerCall = tonumber(ARGV[3])
if #ARGV ~= 3 or not maxPerCall then
  return -2
end

if state == 'dead' then
  local ids = redis.call('RPOP', deadKey, maxPerCall) or {}
  local deleted = 0
  for _, id in ipairs(ids) do
    local jobKey = jobPrefix .. id
    if redis.call('HGET', jobKey, 's') == 'd' then
      redis.call('DEL', jobKey)
      deleted = deleted + 1
    end
  end
  return { deleted, redis.call('EXISTS', deadKey) }
end

local want
if state == 'completed' then
  want = 'c'
elseif state == 'cancelled' then
  want = 'x'
else
  return -2
end
local keep = {}
local deleted = 0
local doomed = {}
local indexed = {}
-- The jobs runs held beyond their first (includes/finished.lua): all of them go with the completed.
local runs = 0
for _, entry in ipairs(redis.call('LRANGE', finishedKey, 0, -1)) do
  local n, _, joined, ranged = finishedRun(entry)
  if n and want == 'c' then
    for _, id in ipairs(finishedRunIds(joined)) do
      deleted = deleted + 1
      doomed[deleted] = id
      if not ranged then
        indexed[#indexed + 1] = id
      end
    end
    runs = runs + n - 1
  elseif not n and string.sub(entry, 1, 1) == want then
    local id = string.sub(entry, 2)
    deleted = deleted + 1
    doomed[deleted] = id
    if want == 'c' then
      indexed[#indexed + 1] = id
    end
  else
    keep[#keep + 1] = entry
  end
end
if deleted > 0 then
  -- Their records in either place (a compact one: includes/compact.lua).
  recordDelete(jobPrefix, doomed)
  redis.call('DEL', finishedKey)
  callChunked('RPUSH', finishedKey, keep)
  callChunked('HDEL', finishedIndexKey(activeKey), indexed)
  if want == 'c' then
    redis.call('DEL', finishedRangesKey(activeKey)) -- every ranged run went
  end
  redis.call('HINCRBY', countersKey, state == 'completed' and 'nc' or 'nx', -deleted)
  finishedAdjustRuns(countersKey, -runs)
end
return { deleted, 0 }
