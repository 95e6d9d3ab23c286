--[[
  reject: dead-letters jobs a client leased but could not decode (their data is not valid JSON), so
  they never reach a handler and are not retried. Applied only where the lease token still matches.
  Each gets an event of kind `dead`, and a job of a group gives its group slot back (see
  includes/groups.lua).

  KEYS:
    1  active    zset    lease tokens by deadline (includes/leases.lua)
    2  dead      list    dead-letter ids, newest first
    3  counters  hash    totals (d dead)
    4  events      stream  job outcome events
    5  priorities  zset    priorities that have ready jobs

  ARGV:
    1  jobPrefix     prefix of job record keys
    2  eventsMaxLen  approximate cap of the event stream (0: no events)
    3  readyPrefix   prefix of the per-priority ready lists
    4  groupPrefix   prefix of the group keys (includes/groups.lua)
    5  count         number of jobs that follow
    6… per job: id, token, reason

  Returns:
    the number of jobs dead-lettered

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/events.lua"
--- @include "includes/finish.lua"
--- @include "includes/groups.lua"
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"

local activeKey, deadKey, countersKey, eventsKey, prioritiesKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local jobPrefix = ARGV[1]
local eventsMaxLen = tonumber(ARGV[2])
local readyPrefix, groupPrefix = ARGV[3], ARGV[4]
local count = tonumber(ARGV[5])
if not (eventsMaxLen and count) or #ARGV ~= 5 + count * 3 then
  return -2
end
local _, nowS = storeNowS()
local events = eventBatch()
local moved = 0
for i = 0, count - 1 do
  local id, token, reason = ARGV[6 + i * 3], ARGV[7 + i * 3], ARGV[8 + i * 3]
  local jobKey = jobPrefix .. id
  recordOwn(jobPrefix, id) -- its record is written: a compact one becomes its own hash
  if leaseHolds(activeKey, token, id) then
    local f = redis.call('HMGET', jobKey, 'a', 'G')
    leaseRelease(activeKey, { id }, { token })
    -- The attempt that would have run counts, as it does for any leased job.
    redis.call('HSET', jobKey, 'a', (tonumber(f[1]) or 0) + 1, 'g', leaseStart(token) or nowS)
    deadLetter(jobKey, deadKey, id, reason, nowS)
    eventAdd(events, id, 'dead', 'x', reason)
    moved = moved + 1
    if f[2] then
      groupFree(groupPrefix, f[2], readyPrefix, prioritiesKey)
    end
  end
end
eventFlush(eventsKey, eventsMaxLen, events, nowS)
if moved > 0 then
  redis.call('HINCRBY', countersKey, 'd', moved)
end
return moved
