--[[
  stats: counts per state, the pause flag and the queue's totals. Like MemoryStore it first promotes
  due scheduled jobs and applies the retentions, so the counts are what a reserve would see.

  KEYS:
    1  settings    hash  queue settings (p paused, r retention, rd dead retention)
    2  priorities  zset  priorities that have ready jobs
    3  scheduled   zset  scheduled job ids by run-at
    4  active      zset  lease tokens by deadline (includes/leases.lua)
    5  dead        list  dead-letter ids, newest first
    6  finished    list  completed and cancelled jobs, newest first (includes/finished.lua)
    7  counters    hash  totals (e c f d x le) and counts (nc nx)

  ARGV:
    1  jobPrefix         prefix of job record keys
    2  readyPrefix       prefix of the per-priority ready lists
    3  maxPromote        most scheduled jobs promoted by this call
    4  defaultRetention  retention of a queue that sets none (n | c<count> | a<ms>)
    5  defaultDeadRetention  dead retention of a queue that sets none
    6  groupPrefix       prefix of the group keys (includes/groups.lua; ready counts its waiting jobs)

  Returns:
    { paused (0 | 1), ready, scheduled, running, completed, dead, cancelled,
      totalEnqueued, totalCompleted, totalFailed, totalDead, totalCancelled, totalLeaseExpiries }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"
--- @include "includes/promote.lua"
--- @include "includes/finish.lua"
--- @include "includes/leases.lua"

local settingsKey, prioritiesKey, scheduledKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local deadKey, finishedKey, countersKey = KEYS[5], KEYS[6], KEYS[7]
local jobPrefix, readyPrefix = ARGV[1], ARGV[2]
local maxPromote = tonumber(ARGV[3])
local defaultRetention, defaultDeadRetention, groupPrefix = ARGV[4], ARGV[5], ARGV[6]
if #ARGV ~= 6 or not maxPromote then
  return -2
end

local now = storeNow()
promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, groupPrefix, now, maxPromote)
local settings = redis.call('HMGET', settingsKey, 'p', 'r', 'rd')
local trimmed = applyRetention(finishedKey, activeKey, countersKey, jobPrefix, settings[2] or defaultRetention, now, 10000)
applyDeadRetention(deadKey, jobPrefix, settings[3] or defaultDeadRetention, now, 10000)
if trimmed.c > 0 then
  redis.call('HINCRBY', countersKey, 'nc', -trimmed.c)
end
if trimmed.x > 0 then
  redis.call('HINCRBY', countersKey, 'nx', -trimmed.x)
end
local c = redis.call('HMGET', countersKey, 'nc', 'nx', 'e', 'c', 'f', 'd', 'x', 'le')
local num = function(v)
  return tonumber(v) or 0
end
return {
  settings[1] == '1' and 1 or 0,
  readyCount(prioritiesKey, readyPrefix, nil) + groupWaitingCount(groupPrefix),
  redis.call('ZCARD', scheduledKey),
  leaseCount(activeKey),
  num(c[1]),
  redis.call('LLEN', deadKey),
  num(c[2]),
  num(c[3]),
  num(c[4]),
  num(c[5]),
  num(c[6]),
  num(c[7]),
  num(c[8]),
}
