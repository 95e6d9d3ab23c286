--[[
  reserve: in one atomic step, checks the pause flag, promotes due scheduled jobs (at most
  maxPromote), applies the fill rule (whole batches only, while the head job is younger than the
  fill wait), checks the rate limit on the store clock, pops up to n ready jobs (lowest priority
  first, FIFO within a priority) and leases each one: the call's token (field k), the attempt
  counted (a), the lease start recorded (g) and the job added to the active zset at its deadline.

  Only jobs actually leased spend the rate limit: an empty queue spends nothing, and with per-call
  limits m jobs spend ceil(m / jobsPerCall) units. Every job leased by one call carries the same
  token (a lease is the pair job id + token, and a job is leased once per call). Records are
  returned whole (HGETALL) and checked by the client, which dead-letters malformed ones with the
  reject script; an id whose record is gone is dropped from the ready list and reported.

  KEYS:
    1  settings    hash    queue settings (p = 1 while paused)
    2  priorities  zset    priorities that have ready jobs
    3  scheduled   zset    scheduled job ids by run-at
    4  active      zset    running job ids by lease deadline
    5  counters    hash    sequences (tk: lease tokens)
    6  limiter     hash    the rate-limit log (not touched when limitAllowed is 0)

  ARGV:
    1  jobPrefix      prefix of job record keys
    2  readyPrefix    prefix of the per-priority ready lists
    3  n              most jobs to lease (≥ 1)
    4  leaseMs        lease length
    5  maxPromote     most scheduled jobs promoted by this call
    6  fillCount      0, or: until the head job has been ready fillWaitMs, reserve nothing while
                      fewer than fillCount are ready, and otherwise whole multiples of fillCount
    7  fillWaitMs
    8  limitAllowed   0 (no limit), or units allowed per period
    9  limitPeriodMs
    10 jobsPerCall    jobs per unit (1 when the limit counts jobs)
    11 leadMs         a unit's slot is leadMs or more after now (the time a worker needs to learn
                      of it before it starts the unit at its slot)
    12 aheadMs        and aheadMs or less after now (capacity freeing soon is granted before it
                      frees, so no slot goes unused while the next reserve travels)
    13 maxActive      -1 (no cap), or: at most this many of the queue's jobs leased at once (the
                      active zset's size), across every worker
    14 capCheckMs     nextCheckInMs to answer when maxActive held the reserve back
    15 limitMarginMs  the part of limitPeriodMs that is a margin (kept under store-wide numbers)
    16 workerId       the worker taking the leases, kept in field w ('': none, and w is cleared)

  Returns:
    { status (0 ok, 1 paused), now, retryAfterMs (-1: none), nextCheckInMs (-1: none), token,
      jobCount, jobCount × [id, fieldCount, field1, value1, ...] (the record before the lease: its
      attempt field is one behind), missingCount, missingCount × id, slotCount, slotCount × [at,
      units] (under a limit: the store times the jobs' units are recorded at, in order; the first
      units × jobsPerCall jobs belong to the first slot, and so on) }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
--- @include "includes/promote.lua"
--- @include "includes/limiter.lua"

local settingsKey, prioritiesKey, scheduledKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local countersKey, limiterKey = KEYS[5], KEYS[6]
local jobPrefix, readyPrefix = ARGV[1], ARGV[2]
local n = tonumber(ARGV[3])
local leaseMs = tonumber(ARGV[4])
local maxPromote = tonumber(ARGV[5])
local fillCount = tonumber(ARGV[6])
local fillWaitMs = tonumber(ARGV[7])
local limitAllowed = tonumber(ARGV[8])
local limitPeriodMs = tonumber(ARGV[9])
local jobsPerCall = tonumber(ARGV[10])
local leadMs, aheadMs = tonumber(ARGV[11]), tonumber(ARGV[12])
local maxActive, capCheckMs = tonumber(ARGV[13]), tonumber(ARGV[14])
local limitMarginMs = tonumber(ARGV[15])
local workerId = ARGV[16]
if #ARGV ~= 16 or not (n and leaseMs and maxPromote and fillCount and limitAllowed and jobsPerCall and leadMs and aheadMs and maxActive and capCheckMs and limitMarginMs) or n < 1 then
  return -2
end

local now = storeNow()
if redis.call('HGET', settingsKey, 'p') == '1' then
  return { 1, now, -1, -1, '', 0, 0, 0 }
end

promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, now, maxPromote)

local want = n
-- Fill: until the head job has been ready fillWaitMs, reserve nothing while fewer than fillCount are
-- ready, and otherwise only whole multiples of fillCount.
if fillCount > 0 then
  local top = redis.call('ZRANGE', prioritiesKey, 0, 0)
  local head = top[1] and redis.call('LINDEX', readyPrefix .. top[1], 0)
  if head then
    local t = redis.call('HMGET', jobPrefix .. head, 'y', 'r', 'c')
    local readyAt = tonumber(t[1] or t[2] or t[3])
    if readyAt and now - readyAt < fillWaitMs then
      local ready = readyCount(prioritiesKey, readyPrefix, n + fillCount)
      if ready < fillCount then
        return { 0, now, -1, fillWaitMs - (now - readyAt), '', 0, 0, 0 }
      end
      want = math.min(n, math.floor(ready / fillCount) * fillCount)
    end
  end
end
-- Global concurrency: the jobs leased now, by every worker, are the active zset.
local capped = false
if maxActive >= 0 then
  local room = math.max(0, maxActive - redis.call('ZCARD', activeKey))
  if room < want then
    want = room
    capped = true
  end
end
local limiter = nil
local plan = nil
local planRetry = -1
if limitAllowed > 0 then
  limiter = limiterOpen(limiterKey, limitAllowed, limitPeriodMs, limitMarginMs, now)
  local granted
  plan, granted, planRetry = limiterPlan(limiter, math.ceil(want / jobsPerCall), now + leadMs, now + math.max(leadMs, aheadMs), false)
  want = math.min(want, granted * jobsPerCall)
end
local jobs, nj = {}, 0
local missing = {}
local leased, nl = {}, 0
local got = 0
local token = ''
if want > 0 then
  token = redis.call('HINCRBY', countersKey, 'tk', 1) .. '.' .. now
end
local nowS = tostring(now)
local deadline = tostring(now + leaseMs)
-- Ids without a record do not count towards `want`; a bounded number of them is dropped per call.
local spare = 1000
while got < want and spare > 0 do
  local ids = readyPop(prioritiesKey, readyPrefix, want - got)
  if #ids == 0 then
    break
  end
  for _, id in ipairs(ids) do
    local jobKey = jobPrefix .. id
    local f = redis.call('HGETALL', jobKey)
    if #f == 0 then
      spare = spare - 1
      missing[#missing + 1] = id
    else
      got = got + 1
      local attempt = '1'
      for i = 1, #f, 2 do
        if f[i] == 'a' then
          attempt = (tonumber(f[i + 1]) or 0) + 1
          break
        end
      end
      redis.call('HSET', jobKey, 'k', token, 'g', nowS, 'a', attempt)
      if workerId ~= '' then
        redis.call('HSET', jobKey, 'w', workerId)
      else
        redis.call('HDEL', jobKey, 'w')
      end
      leased[nl + 1] = deadline
      leased[nl + 2] = id
      nl = nl + 2
      jobs[nj + 1] = id
      jobs[nj + 2] = #f
      nj = nj + 2
      for i = 1, #f do
        jobs[nj + i] = f[i]
      end
      nj = nj + #f
    end
  end
end
callChunked('ZADD', activeKey, leased)

local retryAfter = -1
local nextCheck = -1
local slots = {}
if limiter then
  slots = limiterCommit(limiter, plan, math.ceil(got / jobsPerCall))
  -- Limited only if the limit, not the queue, cut the answer short: ready jobs remain.
  if planRetry >= 0 and got == want and redis.call('ZCARD', prioritiesKey) > 0 then
    retryAfter = planRetry
  end
  limiterSave(limiter)
end
if retryAfter < 0 and capped and got < n then
  nextCheck = capCheckMs
elseif retryAfter < 0 and got < n then
  local nextDue = redis.call('ZRANGE', scheduledKey, 0, 0, 'WITHSCORES')
  if nextDue[2] then
    nextCheck = math.max(1, tonumber(nextDue[2]) - now)
  end
end

local reply = { 0, now, retryAfter, nextCheck, token, got }
for i = 1, #jobs do
  reply[6 + i] = jobs[i]
end
local r = 6 + #jobs
reply[r + 1] = #missing
for i = 1, #missing do
  reply[r + 1 + i] = missing[i]
end
r = r + 1 + #missing
reply[r + 1] = #slots
for i, s in ipairs(slots) do
  reply[r + 2 * i] = s[1]
  reply[r + 2 * i + 1] = s[2]
end
return reply
