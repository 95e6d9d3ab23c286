--[[
  cancel: a waiting (ready or scheduled) job is finished as cancelled at once; for a running job the
  id is published on the cancel channel, so the worker holding it aborts its handler and settles it
  as cancelled; a finished job is left alone. A job cancelled here gets the reason the client gives
  (StoreText.CancelledBeforeRun of @sluice/core) and an event of kind `cancelled`.

  KEYS:
    1  settings    hash    queue settings (r = the queue's retention)
    2  priorities  zset    priorities that have ready jobs
    3  scheduled   zset    scheduled job ids by run-at
    4  active      zset    lease tokens by deadline (includes/leases.lua)
    5  finished    list    completed and cancelled jobs, newest first (includes/finished.lua)
    6  counters    hash    counts (nc, nx) and the cancelled total (x)
    7  events      stream  job outcome events

  ARGV:
    1  jobPrefix         prefix of job record keys
    2  readyPrefix       prefix of the per-priority ready lists
    3  cancelChannel     channel the running job's id is published on
    4  eventsMaxLen      approximate cap of the event stream (0: no events)
    5  id                the job
    6  defaultRetention  retention of a queue that sets none (n | c<count> | a<ms>)
    7  reason            reason recorded on a job cancelled while it waited
    8  groupPrefix       prefix of the group keys (includes/groups.lua): a waiting job of a group
                         leaves its group, a retry keeping its group slot gives it back

  Returns:
    1 cancelled, 2 signalled (running), 3 finished already, 0 not found

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"
--- @include "includes/events.lua"
--- @include "includes/finish.lua"
--- @include "includes/state.lua"
--- @include "includes/publish.lua"

local settingsKey, prioritiesKey, scheduledKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local finishedKey, countersKey, eventsKey = KEYS[5], KEYS[6], KEYS[7]
local jobPrefix, readyPrefix, cancelChannel = ARGV[1], ARGV[2], ARGV[3]
local eventsMaxLen = tonumber(ARGV[4])
local id, defaultRetention, reason, groupPrefix = ARGV[5], ARGV[6], ARGV[7], ARGV[8]
if #ARGV ~= 8 or not eventsMaxLen then
  return -2
end

local jobKey = jobPrefix .. id
local state, priority = jobState(jobPrefix, id, activeKey, scheduledKey)
if not state then
  return 0
end
if state == 'a' then
  publish(cancelChannel, id)
  return 2
end
if state == 'c' or state == 'x' or state == 'd' then
  return 3
end

local now, nowS = storeNowS()
recordOwn(jobPrefix, id) -- its record is written: a compact one becomes its own hash
local g = redis.call('HMGET', jobKey, 'G', 'H')
if state == 'w' and g[1] then
  groupRemove(groupPrefix, g[1], id, priority, readyPrefix, prioritiesKey)
elseif state == 'w' then
  readyRemove(readyPrefix, prioritiesKey, priority, id)
else
  redis.call('ZREM', scheduledKey, id)
  if g[1] and g[2] then
    redis.call('HDEL', jobKey, 'H')
    groupFree(groupPrefix, g[1], readyPrefix, prioritiesKey)
  end
end
local queueRetention = redis.call('HGET', settingsKey, 'r') or defaultRetention
local jobRetention = redis.call('HGET', jobKey, 'R')
local finished = finishBatch()
local kept = finishJob(finished, jobKey, id, 'x', nowS, jobRetention, queueRetention, 'x', reason)
finishFlush(finished, finishedKey, jobPrefix)
local trimmed = applyRetention(finishedKey, activeKey, countersKey, jobPrefix, queueRetention, now, 1000)
local nc, nx = -trimmed.c, (kept and 1 or 0) - trimmed.x
redis.call('HINCRBY', countersKey, 'x', 1)
if nc ~= 0 then
  redis.call('HINCRBY', countersKey, 'nc', nc)
end
if nx ~= 0 then
  redis.call('HINCRBY', countersKey, 'nx', nx)
end
local events = eventBatch()
eventAdd(events, id, 'cancelled', 'x', reason)
eventFlush(eventsKey, eventsMaxLen, events, nowS)
return 1
