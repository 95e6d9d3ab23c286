--[[
  recover: returns jobs whose lease deadline has passed (their worker crashed or stalled) to the
  queue, counting the attempt and recording a LeaseExpiredError (event kind `retrying`); a job that
  was on its last attempt is dead-lettered with a "lease expired" reason (event kind `dead`).
  Idempotent: a job is recovered once, whichever node runs this, and its old token stops matching. At
  most maxPerCall jobs per call (`more` says whether expired leases remain). The texts come from the
  client (StoreText of @sluice/core) as templates: `{attempt}` and `{maxAttempts}` are filled in.
  Workers run it every few seconds, so it is also where retention by age advances when nothing
  settles: the finished and dead lists are trimmed to the queue's retentions (oldest first, at most
  maxPerCall records each).

  KEYS:
    1  priorities  zset    priorities that have ready jobs
    2  active      zset    lease tokens by deadline (includes/leases.lua)
    3  dead        list    dead-letter ids, newest first
    4  counters    hash    totals (f failed, le of them lease expiries, d dead)
    5  events      stream  job outcome events
    6  settings    hash    queue settings (r / rd = the queue's retention / dead retention)
    7  finished    list    completed and cancelled jobs, newest first (includes/finished.lua)

  ARGV:
    1  jobPrefix           prefix of job record keys
    2  readyPrefix         prefix of the per-priority ready lists
    3  historyPrefix       prefix of the per-minute history hashes
    4  wakeChannel         channel told when jobs were put back
    5  eventsMaxLen        approximate cap of the event stream (0: no events)
    6  historyTtlMs        how long a per-minute history hash lives
    7  maxPerCall          most jobs handled by this call
    8  defaultMaxAttempts  max attempts of a job whose record sets none
    9  maxErrors           attempt errors kept per job (the first and the latest maxErrors - 1)
    10 reasonTemplate      template of the dead-letter reason (`{attempt}`, `{maxAttempts}`)
    11 errorTemplate       template of the error recorded, as JSON (`{attempt}`)
    12 defaultRetention      retention of a queue that sets none (n | k | c<count> | a<ms> | c<count>a<ms>)
    13 defaultDeadRetention  dead retention of a queue that sets none
    14 groupPrefix         prefix of the group keys (includes/groups.lua): a recovered job of a group
                           goes to the front of its group, and its group slot is given back

  Returns:
    { now, more (0 | 1), recoveredCount, recoveredCount × id, deadCount, deadCount × id }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"
--- @include "includes/events.lua"
--- @include "includes/attempt-errors.lua"
--- @include "includes/history.lua"
--- @include "includes/finish.lua"
--- @include "includes/template.lua"
--- @include "includes/publish.lua"
--- @include "includes/leases.lua"

local prioritiesKey, activeKey, deadKey, countersKey, eventsKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local settingsKey, finishedKey = KEYS[6], KEYS[7]
local jobPrefix, readyPrefix, historyPrefix, wakeChannel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local eventsMaxLen = tonumber(ARGV[5])
local historyTtlMs = tonumber(ARGV[6])
local maxPerCall = tonumber(ARGV[7])
local defaultMaxAttempts = tonumber(ARGV[8])
local maxErrors = tonumber(ARGV[9])
local reasonTemplate, errorTemplate = ARGV[10], ARGV[11]
local defaultRetention, defaultDeadRetention = ARGV[12], ARGV[13]
local groupPrefix = ARGV[14]
local numbers = eventsMaxLen and historyTtlMs and maxPerCall and defaultMaxAttempts and maxErrors
if #ARGV ~= 14 or not numbers then
  return -2
end

local now = storeNow()
local retentions = redis.call('HMGET', settingsKey, 'r', 'rd')
local trimmed = applyRetention(finishedKey, activeKey, countersKey, jobPrefix, retentions[1] or defaultRetention, now, maxPerCall)
if trimmed.c > 0 then
  redis.call('HINCRBY', countersKey, 'nc', -trimmed.c)
end
if trimmed.x > 0 then
  redis.call('HINCRBY', countersKey, 'nx', -trimmed.x)
end
local deadRetention = retentions[2] or defaultDeadRetention
applyDeadRetention(deadKey, jobPrefix, deadRetention, now, maxPerCall)
-- The jobs still held by expired leases, lease by lease, at most maxPerCall (a lease with more
-- keeps the rest for the next call).
local expiredLeases = redis.call('ZRANGEBYSCORE', activeKey, '-inf', now, 'LIMIT', 0, maxPerCall + 1)
local expired, expiredTokens = {}, {}
-- Entries a version before leases per call left (the member is a job id, its record holds the
-- lease and counts the attempt it runs): recovered the same way, the attempt not counted twice.
local legacy = {}
local more = 0
-- Takes job `id` of lease `token` (false: a legacy entry) into this call, if it has room.
local function take(id, token)
  if #expired >= maxPerCall then
    more = 1
    return false
  end
  expired[#expired + 1] = id
  expiredTokens[#expired] = token
  return true
end
for _, token in ipairs(expiredLeases) do
  local key = leaseKey(activeKey, token)
  if not string.find(token, '^%d+%.%d+%.%d+$') or redis.call('EXISTS', key, key .. ':i') == 0 then
    if not take(token, false) then
      break
    end
    legacy[#legacy + 1] = token
  else
    local held = leaseHeld(activeKey, token)
    if #expired > 0 and #expired + #held > maxPerCall then
      more = 1
      break
    end
    for _, id in ipairs(held) do
      if not take(id, token) then
        break
      end
    end
    if #held == 0 then
      -- Nothing left under it (its jobs were all released): the lease goes.
      redis.call('DEL', key, key .. ':i')
      redis.call('ZREM', activeKey, token)
    end
  end
end
if #expiredLeases > maxPerCall then
  more = 1
end
if #expired == 0 then
  return { now, more, 0, 0 }
end

local nowS = tostring(now)
local recovered, dead = {}, {}
local batch = readyBatch()
local events = eventBatch()
for i, id in ipairs(expired) do
  local jobKey = jobPrefix .. id
  recordOwn(jobPrefix, id) -- its record is written: a compact one becomes its own hash
  local token = expiredTokens[i]
  local f = redis.call('HMGET', jobKey, 'c', 'a', 'm', 'p', 'G', 's')
  if f[1] and not f[6] then
    -- The attempt the lease held ends now (a legacy record counted it when it was leased).
    local attempt = (tonumber(f[2]) or 0) + (token and 1 or 0)
    local maxAttempts = tonumber(f[3]) or defaultMaxAttempts
    local errorJson = fillTemplate(errorTemplate, attempt, maxAttempts)
    if token then
      redis.call('HSET', jobKey, 'a', attempt, 'g', leaseStart(token) or nowS)
    else
      redis.call('HDEL', jobKey, 'k')
    end
    recordError(jobKey, errorJson, attempt, nowS, maxErrors)
    if attempt >= maxAttempts then
      local reason = fillTemplate(reasonTemplate, attempt, maxAttempts)
      deadLetter(jobKey, deadKey, id, reason, nowS)
      dead[#dead + 1] = id
      eventAdd(events, id, 'dead', 'x', reason, 'e', errorJson)
      if f[5] then
        groupFree(groupPrefix, f[5], readyPrefix, prioritiesKey)
      end
    else
      redis.call('HSET', jobKey, 'y', nowS)
      if f[5] then
        groupPush(groupPrefix, f[5], f[4], id, true, readyPrefix, prioritiesKey)
        groupFree(groupPrefix, f[5], readyPrefix, prioritiesKey)
      else
        readyAdd(batch, f[4], id)
      end
      recovered[#recovered + 1] = id
      eventAdd(events, id, 'retrying', 'e', errorJson)
    end
  end
end
if #legacy > 0 then
  redis.call('ZREM', activeKey, unpack(legacy))
  local current, currentTokens = {}, {}
  for i, id in ipairs(expired) do
    if expiredTokens[i] then
      current[#current + 1] = id
      currentTokens[#current] = expiredTokens[i]
    end
  end
  expired, expiredTokens = current, currentTokens
end
leaseRelease(activeKey, expired, expiredTokens)
readyFlush(batch, readyPrefix, prioritiesKey)
local failed = #recovered + #dead
if failed > 0 then
  redis.call('HINCRBY', countersKey, 'f', failed)
  redis.call('HINCRBY', countersKey, 'le', failed)
  bumpHistory(historyPrefix, historyTtlMs, now, 0, failed)
end
if #dead > 0 then
  redis.call('HINCRBY', countersKey, 'd', #dead)
end
if #recovered > 0 then
  publish(wakeChannel, '')
end
eventFlush(eventsKey, eventsMaxLen, events, nowS)
if #dead > 0 then
  applyDeadRetention(deadKey, jobPrefix, deadRetention, now, #dead)
end

local reply = { now, more, #recovered }
for _, id in ipairs(recovered) do
  reply[#reply + 1] = id
end
reply[#reply + 1] = #dead
for _, id in ipairs(dead) do
  reply[#reply + 1] = id
end
return reply
