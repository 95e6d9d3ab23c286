--[[
  settle: applies many outcomes of one queue's jobs at once, each only if its lease token still
  matches the one stored on the job (field k) and the job has not finished (no field s).

    c completed  the job finishes (result kept unless its retention deletes it)
    r retry      the error is recorded and the job is due again delayMs after the store's now
    d dead       dead-lettered with a reason (and the error, if one is given)
    s snoozed    due again after delayMs; the attempt is given back
    x cancelled  the job finishes as cancelled with a reason

  Counters, per-minute history and the event stream are updated in the same call. Afterwards the
  finished list is trimmed to the queue's retention.

  KEYS:
    1  settings    hash    queue settings (r = the queue's retention)
    2  priorities  zset    priorities that have ready jobs
    3  scheduled   zset    scheduled job ids by run-at
    4  active      zset    running job ids by lease deadline
    5  dead        list    dead-letter ids, newest first
    6  finished    list    completed and cancelled jobs, newest first ("c<id>" / "x<id>")
    7  counters    hash    totals (c completed, f failed, d dead) and counts (nc, nx)
    8  events      stream  job outcome events

  ARGV:
    1  jobPrefix      prefix of job record keys
    2  readyPrefix    prefix of the per-priority ready lists
    3  historyPrefix  prefix of the per-minute history hashes
    4  eventsMaxLen   approximate cap of the event stream (0: no events)
    5  historyTtlMs   how long a per-minute history hash lives
    6  count          number of settlements that follow
    7… per settlement, 5 values: id, token, kind (c r d s x), a, b where
         c: a = result JSON ('' = no result)       r: a = delayMs, b = error JSON
         d: a = reason, b = error JSON ('' = none) s: a = delayMs
         x: a = reason

  Returns:
    { now, code1, code2, ... } in the order given: 1 applied, 0 not found, 2 lease lost.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
--- @include "includes/events.lua"
--- @include "includes/attempt-errors.lua"
--- @include "includes/history.lua"
--- @include "includes/finish.lua"

local FIELDS = 5
local settingsKey, prioritiesKey, scheduledKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local deadKey, finishedKey, countersKey, eventsKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local jobPrefix, readyPrefix, historyPrefix = ARGV[1], ARGV[2], ARGV[3]
local eventsMaxLen = tonumber(ARGV[4])
local historyTtlMs = tonumber(ARGV[5])
local count = tonumber(ARGV[6])
if not (count and eventsMaxLen and historyTtlMs) or #ARGV ~= 6 + count * FIELDS then
  return -2
end
local KINDS = { c = true, r = true, d = true, s = true, x = true }
for i = 0, count - 1 do
  if not KINDS[ARGV[9 + i * FIELDS]] then
    return -2
  end
end

local now = storeNow()
local nowS = tostring(now)
local queueRetention = redis.call('HGET', settingsKey, 'r') or nil
local reply = { now }
local done = {}
local completed, failed, dead, keptCompleted, keptCancelled = 0, 0, 0, 0, 0
local ready = readyBatch()
local finished = finishBatch()
local events = eventBatch()
local scheduled = {}

-- Back to the queue: scheduled at now + delay, or ready now.
local requeue = function(jobKey, id, delay, priority)
  if delay > 0 then
    local runAt = tostring(now + delay)
    scheduled[#scheduled + 1] = runAt
    scheduled[#scheduled + 1] = id
    redis.call('HSET', jobKey, 'r', runAt)
    redis.call('HDEL', jobKey, 'k', 'y')
  else
    redis.call('HSET', jobKey, 'y', nowS)
    redis.call('HDEL', jobKey, 'k')
    readyAdd(ready, priority, id)
  end
end

for i = 0, count - 1 do
  local base = 7 + i * FIELDS
  local id, token, kind, a, b = ARGV[base], ARGV[base + 1], ARGV[base + 2], ARGV[base + 3], ARGV[base + 4]
  local jobKey = jobPrefix .. id
  -- Field k holds the lease token; a finished job keeps it, but its state s makes it stale.
  local f
  if kind == 'c' or kind == 'x' then
    f = redis.call('HMGET', jobKey, 'k', 's', 'R')
  else
    f = redis.call('HMGET', jobKey, 'k', 's', 'a', 'p')
  end
  if f[1] ~= token or f[2] then
    reply[#reply + 1] = redis.call('EXISTS', jobKey) == 1 and 2 or 0
  else
    reply[#reply + 1] = 1
    done[#done + 1] = id
    if kind == 'c' then
      local fields = {}
      if a ~= '' then
        fields = { 'o', a }
      end
      if finishJob(finished, jobKey, id, 'c', nowS, f[3], queueRetention, fields) then
        keptCompleted = keptCompleted + 1
      end
      completed = completed + 1
      eventAdd(events, id, 'c', { 'r', a })
    elseif kind == 'x' then
      if finishJob(finished, jobKey, id, 'x', nowS, f[3], queueRetention, { 'x', a }) then
        keptCancelled = keptCancelled + 1
      end
      eventAdd(events, id, 'x', { 'x', a })
    else
      local attempt = tonumber(f[3]) or 0
      if kind == 'r' then
        recordError(jobKey, b, attempt, nowS)
        failed = failed + 1
        requeue(jobKey, id, math.max(0, tonumber(a) or 0), f[4])
        eventAdd(events, id, 'r', { 'e', b })
      elseif kind == 'd' then
        if b ~= '' then
          recordError(jobKey, b, attempt, nowS)
          failed = failed + 1
        end
        deadLetter(jobKey, deadKey, id, a, nowS)
        dead = dead + 1
        eventAdd(events, id, 'd', { 'x', a, 'e', b })
      else
        redis.call('HSET', jobKey, 'a', math.max(0, attempt - 1))
        requeue(jobKey, id, math.max(0, tonumber(a) or 0), f[4])
        eventAdd(events, id, 's', nil)
      end
    end
  end
end

callChunked('ZREM', activeKey, done)
finishFlush(finished, finishedKey)
readyFlush(ready, readyPrefix, prioritiesKey)
callChunked('ZADD', scheduledKey, scheduled)

local trimmed = applyRetention(finishedKey, jobPrefix, queueRetention, now, 1000 + #done)
local counts = {
  'c', completed, 'f', failed, 'd', dead,
  'nc', keptCompleted - trimmed.c, 'nx', keptCancelled - trimmed.x,
}
for i = 1, #counts, 2 do
  if counts[i + 1] ~= 0 then
    redis.call('HINCRBY', countersKey, counts[i], counts[i + 1])
  end
end
bumpHistory(historyPrefix, historyTtlMs, now, completed, failed)
eventFlush(eventsKey, eventsMaxLen, events, nowS)
return reply
