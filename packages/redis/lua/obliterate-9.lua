--[[
  obliterate: deletes a whole queue, one bounded step per call; the client calls again (passing the
  cursor back) until the answer says done.

  Every step first checks for running jobs: with some and no force, it refuses and changes nothing.
  Otherwise it sets the paused flag (so no worker leases a job of the queue meanwhile) and deletes at
  most maxPerCall job records: running ones first (force: each id is published on the cancel channel
  so its worker aborts it; a later settle, extension or progress report finds no record and writes
  nothing), then ready, scheduled, dead and finished ones. Each deleted record's unique-key lock goes
  too if it still names that job. Once no job structure is left, the steps walk the keys of the queue
  with SCAN … MATCH pattern (maxPerCall per step, the cursor carried by the client) and delete them
  (unique locks of jobs deleted earlier, per-minute history, every fixed key). The last step leaves
  the settings hash holding only its version, one higher, and publishes unpaused settings with it, so
  a worker still listening orders later settings changes after this one.

  KEYS:
    1  settings    hash    queue settings (p paused, v version)
    2  priorities  zset    priorities that have ready jobs
    3  scheduled   zset    scheduled job ids by run-at
    4  active      zset    lease tokens by deadline (includes/leases.lua)
    5  dead        list    dead-letter ids, newest first
    6  finished    list    completed and cancelled jobs, newest first (includes/finished.lua)
    7  counters    hash    totals, counts and sequences
    8  config      string  queue configuration JSON
    9  events      stream  job outcome events

  ARGV:
    1  jobPrefix        prefix of job record keys
    2  readyPrefix      prefix of the per-priority ready lists
    3  uniquePrefix     prefix of unique-key locks
    4  cancelChannel    channel carrying ids of running jobs to abort
    5  settingsChannel  channel carrying settings changes
    6  pattern          SCAN MATCH pattern of every key of the queue (glob characters escaped)
    7  force            1: delete running jobs too; 0: refuse while any runs
    8  maxPerCall       most records (or scanned keys) handled by this call (≥ 1)
    9  cursor           '' until the key walk starts, then the SCAN cursor the previous call answered

  Returns:
    { code, deleted, running, cursor } where code is 0 refused (running jobs, no force; nothing
    changed), 1 not done (call again with cursor) or 2 done; deleted the job records this call
    deleted; running the running jobs found at the start of the call.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/ready.lua"
--- @include "includes/publish.lua"
--- @include "includes/leases.lua"
--- @include "includes/parks.lua"
--- @include "includes/compact.lua"
--- @include "includes/finished.lua"

local settingsKey, prioritiesKey, scheduledKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local deadKey, finishedKey, countersKey, configKey, eventsKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8], KEYS[9]
local jobPrefix, readyPrefix, uniquePrefix = ARGV[1], ARGV[2], ARGV[3]
local cancelChannel, settingsChannel, pattern = ARGV[4], ARGV[5], ARGV[6]
local force, maxPerCall, cursor = ARGV[7], tonumber(ARGV[8]), ARGV[9]
if #ARGV ~= 9 or not maxPerCall or maxPerCall < 1 or (force ~= '0' and force ~= '1') then
  return -2
end

local running = leaseCount(activeKey)
if running > 0 and force ~= '1' then
  return { 0, 0, running, cursor }
end
redis.call('HSET', settingsKey, 'p', '1')

local deleted = 0
local drop = function(id)
  local jobKey = jobPrefix .. id
  local unique = redis.call('HGET', jobKey, 'u')
  if unique and redis.call('GET', uniquePrefix .. unique) == id then
    redis.call('DEL', uniquePrefix .. unique)
  end
  deleted = deleted + recordDelete(jobPrefix, { id })
end
local budget = maxPerCall
local compactPrefix = compactPrefixOf(jobPrefix)

-- Running jobs first: from here on their workers can change nothing.
if budget > 0 and running > 0 then
  for _, token in ipairs(redis.call('ZRANGE', activeKey, 0, budget - 1)) do
    local ids, tokens = {}, {}
    for _, id in ipairs(leaseHeld(activeKey, token)) do
      if budget <= 0 then
        break
      end
      publish(cancelChannel, id)
      drop(id)
      ids[#ids + 1] = id
      tokens[#ids] = token
      budget = budget - 1
    end
    leaseRelease(activeKey, ids, tokens)
    if budget <= 0 then
      break
    end
  end
end
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
  budget = budget - #popped / 2
end
if budget > 0 then
  local ids = redis.call('RPOP', deadKey, budget) or {}
  for _, id in ipairs(ids) do
    drop(id)
  end
  budget = budget - #ids
end
if budget > 0 then
  -- Whole entries from the old end, a run's every job (includes/finished.lua), while the budget
  -- lasts (at least one entry); the counters go with the queue at the end.
  local entries = redis.call('LRANGE', finishedKey, -budget, -1)
  local popped = 0
  for i = #entries, 1, -1 do
    local n, _, joined = finishedRun(entries[i])
    if popped > 0 and (n or 1) > budget then
      budget = 0 -- the rest next call
      break
    end
    popped = popped + 1
    if n then
      for _, id in ipairs(finishedRunIds(joined)) do
        drop(id)
      end
    else
      drop(string.sub(entries[i], 2))
    end
    budget = budget - (n or 1)
  end
  if popped > 0 then
    redis.call('RPOP', finishedKey, popped)
  end
end
if budget <= 0 then
  return { 1, deleted, running, cursor }
end

-- No job structure is left: walk the queue's keys.
local scan = redis.call('SCAN', cursor == '' and '0' or cursor, 'MATCH', pattern, 'COUNT', maxPerCall)
for _, key in ipairs(scan[2]) do
  if key ~= settingsKey then
    if string.sub(key, 1, #compactPrefix) == compactPrefix then
      -- A compact bucket (includes/compact.lua): records of no job structure left.
      deleted = deleted + redis.call('HLEN', key)
      redis.call('DEL', key)
    elseif string.sub(key, 1, #jobPrefix) == jobPrefix then
      drop(string.sub(key, #jobPrefix + 1))
    else
      redis.call('DEL', key)
    end
  end
end
if scan[1] ~= '0' then
  return { 1, deleted, running, scan[1] }
end

redis.call('DEL', prioritiesKey, scheduledKey, activeKey, parksKey(activeKey), deadKey, finishedKey, countersKey, configKey, eventsKey)
local version = (tonumber(redis.call('HGET', settingsKey, 'v')) or 0) + 1
redis.call('DEL', settingsKey)
redis.call('HSET', settingsKey, 'v', version)
publish(settingsChannel, version .. '|0|')
return { 2, deleted, running, '0' }
