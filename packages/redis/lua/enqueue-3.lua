--[[
  enqueue: adds jobs to one queue atomically (one call per chunk of a bulk add).

  A job whose caller-chosen id exists, or whose unique key is locked, is not stored: its answer is the
  existing id with the duplicate flag. New jobs get a record `<jobPrefix><id>` (a hash with short
  fields: d data JSON stored verbatim, c created-at, and only the non-default options: n name,
  p priority, r run-at, y ready-at, m max attempts, t timeout, u unique key, R retention, q cost,
  T trace context, G group), and go to
  the ready list of their priority (a job of a group: the back of its group, see
  includes/groups.lua) or, when due later, to the scheduled zset. Automatic ids come from
  the `id` sequence of the counters hash and skip ids a caller already took.

  KEYS:
    1  counters    hash  totals and sequences (id: automatic ids, e: enqueued total)
    2  priorities  zset  priorities that have ready jobs
    3  scheduled   zset  scheduled job ids by run-at

  ARGV:
    1  jobPrefix     prefix of job record keys
    2  readyPrefix   prefix of the per-priority ready lists
    3  uniquePrefix  prefix of unique-key locks
    4  wakeChannel   channel told when jobs were added
    5  groupPrefix   prefix of the group keys (includes/groups.lua)
    6  count         number of jobs that follow
    7… per job, 14 values: id ('' = automatic), data JSON, name ('' = the queue's), priority
       ('' = 0), delayMs (''), runAt ('' or epoch ms; wins over delayMs), maxAttempts (''),
       timeoutMs (''), uniqueKey (''), uniqueTtlMs, retention ('' | n | c<count> | a<ms>),
       cost ('' = 1: units of a per-job rate limit the job spends), trace context
       ('' = none, else the traceparent, then a space and the tracestate if there is one),
       group ('' = none)

  Returns:
    { now, id1, duplicate1, id2, duplicate2, ... } with duplicate 1 or 0, in the order given.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"
--- @include "includes/publish.lua"

local FIELDS = 14
local countersKey, prioritiesKey, scheduledKey = KEYS[1], KEYS[2], KEYS[3]
local jobPrefix, readyPrefix, uniquePrefix, wakeChannel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local groupPrefix = ARGV[5]
local count = tonumber(ARGV[6])
if not count or #ARGV ~= 6 + count * FIELDS then
  return -2
end

local now = storeNow()
local nowS = tostring(now)
local reply = { now }
local batch = readyBatch()
local scheduled = {}
local created = 0

-- Automatic ids: one sequence bump for the whole call, one more per id a caller already took.
local autoCount = 0
for i = 0, count - 1 do
  if ARGV[7 + i * FIELDS] == '' then
    autoCount = autoCount + 1
  end
end
local nextAuto = 0
if autoCount > 0 then
  nextAuto = redis.call('HINCRBY', countersKey, 'id', autoCount) - autoCount
end
local takeAutoId = function()
  while true do
    local id
    if autoCount > 0 then
      autoCount = autoCount - 1
      nextAuto = nextAuto + 1
      id = string.format('%d', nextAuto)
    else
      id = string.format('%d', redis.call('HINCRBY', countersKey, 'id', 1))
    end
    if redis.call('EXISTS', jobPrefix .. id) == 0 then
      return id
    end
  end
end

for i = 0, count - 1 do
  local base = 7 + i * FIELDS
  local id = ARGV[base]
  local data = ARGV[base + 1]
  local name = ARGV[base + 2]
  local priority = ARGV[base + 3]
  local delayMs = ARGV[base + 4]
  local runAtArg = ARGV[base + 5]
  local maxAttempts = ARGV[base + 6]
  local timeoutMs = ARGV[base + 7]
  local uniqueKey = ARGV[base + 8]
  local uniqueTtl = ARGV[base + 9]
  local retention = ARGV[base + 10]
  local cost = ARGV[base + 11]
  local trace = ARGV[base + 12]
  local group = ARGV[base + 13]

  local duplicateOf = nil
  if id ~= '' and redis.call('EXISTS', jobPrefix .. id) == 1 then
    duplicateOf = id
  end
  if not duplicateOf and id == '' then
    id = takeAutoId()
  end
  if not duplicateOf and uniqueKey ~= '' then
    local held = redis.call('SET', uniquePrefix .. uniqueKey, id, 'NX', 'PX', uniqueTtl, 'GET')
    if held then
      duplicateOf = held
    end
  end

  if duplicateOf then
    reply[#reply + 1] = duplicateOf
    reply[#reply + 1] = 1
  else
    local runAt = now
    if runAtArg ~= '' then
      runAt = tonumber(runAtArg)
    elseif delayMs ~= '' then
      runAt = now + tonumber(delayMs)
    end
    local fields = { 'd', data, 'c', nowS }
    if name ~= '' then
      fields[#fields + 1] = 'n'
      fields[#fields + 1] = name
    end
    if priority ~= '' and priority ~= '0' then
      fields[#fields + 1] = 'p'
      fields[#fields + 1] = priority
    end
    if runAt ~= now then
      fields[#fields + 1] = 'r'
      fields[#fields + 1] = runAt
      if runAt < now then
        -- Due already: it becomes ready now (a fill wait counts from here, not from the past run-at).
        fields[#fields + 1] = 'y'
        fields[#fields + 1] = nowS
      end
    end
    if maxAttempts ~= '' then
      fields[#fields + 1] = 'm'
      fields[#fields + 1] = maxAttempts
    end
    if timeoutMs ~= '' then
      fields[#fields + 1] = 't'
      fields[#fields + 1] = timeoutMs
    end
    if uniqueKey ~= '' then
      fields[#fields + 1] = 'u'
      fields[#fields + 1] = uniqueKey
    end
    if retention ~= '' then
      fields[#fields + 1] = 'R'
      fields[#fields + 1] = retention
    end
    if cost ~= '' and cost ~= '1' then
      fields[#fields + 1] = 'q'
      fields[#fields + 1] = cost
    end
    if trace ~= '' then
      fields[#fields + 1] = 'T'
      fields[#fields + 1] = trace
    end
    if group ~= '' then
      fields[#fields + 1] = 'G'
      fields[#fields + 1] = group
    end
    redis.call('HSET', jobPrefix .. id, unpack(fields))
    if runAt > now then
      scheduled[#scheduled + 1] = runAt
      scheduled[#scheduled + 1] = id
    elseif group ~= '' then
      -- Ready jobs before it go first, so the ready lists keep the order of the add.
      readyFlush(batch, readyPrefix, prioritiesKey)
      batch = readyBatch()
      groupPush(groupPrefix, group, priority ~= '' and priority or '0', id, false, readyPrefix, prioritiesKey)
    else
      readyAdd(batch, priority ~= '' and priority or '0', id)
    end
    created = created + 1
    reply[#reply + 1] = id
    reply[#reply + 1] = 0
  end
end

readyFlush(batch, readyPrefix, prioritiesKey)
if #scheduled > 0 then
  callChunked('ZADD', scheduledKey, scheduled)
end
if created > 0 then
  redis.call('HINCRBY', countersKey, 'e', created)
  publish(wakeChannel, '')
end
return reply
