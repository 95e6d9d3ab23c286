--[[
  enqueue: adds jobs to one queue atomically (one call per chunk of a bulk add).

  A job whose caller-chosen id exists, or whose unique key is locked, is not stored: its answer is the
  existing id with the duplicate flag. A job with every option at its default gets a compact record:
  a field of a compact bucket (includes/compact.lua), written with one HSET per bucket for the whole
  call. Other new jobs get a record `<jobPrefix><id>` (a hash with short
  fields: d data JSON stored verbatim, c created-at, and only the non-default options: n name,
  p priority, r run-at, y ready-at, m max attempts, t timeout, u unique key, R retention, q cost,
  T trace context, G group). Either goes to
  the ready list of their priority (a job of a group: the back of its group, see
  includes/groups.lua) or, when due later, to the scheduled zset. Automatic ids come from
  the `id` sequence of the counters hash and skip ids a caller already took.

  Handoff (includes/parks.lua): when workers have parked their demand, the queue is not paused and
  nothing was ready before this add, its new ungrouped due jobs go to the parks instead (lowest
  priority first, in order), leased and published to each park's channel; the rest go to the ready
  lists as above, and the wake channel is told only when some did.

  KEYS:
    1  counters    hash  totals and sequences (id: automatic ids, e: enqueued total)
    2  priorities  zset  priorities that have ready jobs
    3  scheduled   zset  scheduled job ids by run-at
    4  settings    hash  queue settings (p = 1 while paused: nothing is handed over)
    5  active      zset  leases (includes/leases.lua); its `:p` hash holds the parks

  ARGV:
    1  jobPrefix     prefix of job record keys
    2  readyPrefix   prefix of the per-priority ready lists
    3  uniquePrefix  prefix of unique-key locks
    4  wakeChannel   channel told when jobs were added
    5  groupPrefix   prefix of the group keys (includes/groups.lua)
    6  handoffPrefix prefix of the parks' channels
    7  count         number of jobs that follow
    8… per job: the number k of options it sets, its data JSON, then k pairs of an option letter and
       its value (a job with every default is two values: '0' and its data):
         i id (absent: automatic)      n name (absent: the queue's)   p priority (0)
         D delayMs                     r runAt (epoch ms; wins over D) m maxAttempts
         t timeoutMs                   u unique key, U its TTL ms     R retention (n | k | c<count> | a<ms>)
         q cost (1: units of a per-job rate limit the job spends)
         T trace context (the traceparent, then a space and the tracestate if there is one)
         G group

  Automatic ids need no EXISTS check once they pass the highest digits-only id a caller chose
  (counters field ix, kept from the queue's first add on; a queue whose counters predate it has no
  ix and every automatic id is checked).

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
--- @include "includes/leases.lua"
--- @include "includes/parks.lua"
--- @include "includes/compact.lua"

local countersKey, prioritiesKey, scheduledKey, settingsKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local jobPrefix, readyPrefix, uniquePrefix, wakeChannel = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local groupPrefix, handoffPrefix = ARGV[5], ARGV[6]
local count = tonumber(ARGV[7])
if not count then
  return -2
end

-- One job with every option at its default (the add of a lightly loaded queue, whose job a parked
-- worker usually takes): the same writes as the general path below, in a straight line, without its
-- batch tables and generic handoff message. Measured (bench/README.md): about a fifth fewer
-- instructions for an add handed over.
if count == 1 and #ARGV == 9 and ARGV[#ARGV - 1] == '0' then
  local data = ARGV[#ARGV] -- its two values, '0' options and its data, are the last two
  local now, nowS = storeNowS()
  local counters = redis.call('HMGET', countersKey, 'ix', 'e')
  local chosenMax = tonumber(counters[1])
  local chosenMaxWas = chosenMax
  if not chosenMax and not counters[2] then
    chosenMax = 0 -- a queue's first add: nothing chosen yet
  end
  local id
  repeat
    local n = redis.call('HINCRBY', countersKey, 'id', '1')
    id = string.format('%d', n)
  until (chosenMax and n > chosenMax) or not recordExists(jobPrefix, id)
  redis.call('HSET', compactKeyOf(jobPrefix, id), id, compactValue(nowS, data))
  local handed = false
  local parked = parksRead(activeKey)
  if #parked > 0 and redis.call('ZCARD', prioritiesKey) == 0 and redis.call('HGET', settingsKey, 'p') ~= '1' then
    local park = parksOpen(activeKey, parked, now)[1]
    if park then
      local token = string.format('%d.%s.1', redis.call('HINCRBY', countersKey, 'tk', '1'), nowS)
      leaseOpen(activeKey, token, { id }, string.format('%d', now + park.leaseMs), park.workerId, id)
      parkTake(activeKey, park, 1)
      publish(handoffPrefix .. park.id, parkMessageOne(park, nowS, token, id, data))
      handed = true
    end
  end
  if not handed then
    readyPush(readyPrefix, prioritiesKey, '0', id)
  end
  if chosenMax ~= chosenMaxWas then
    redis.call('HSET', countersKey, 'ix', chosenMax)
  end
  redis.call('HINCRBY', countersKey, 'e', '1')
  if not handed then
    publish(wakeChannel, '')
  end
  return { now, id, 0 }
end
-- The option letters, as one string: a table of them would be built again on every call.
local OPTIONS = 'inpDrmtuURqTG'
-- First pass, before any write: the arguments are whole, and how many jobs take an automatic id.
local autoCount = 0
local at = 8
for _ = 1, count do
  local k = ARGV[at] == '0' and 0 or tonumber(ARGV[at]) -- most jobs set no option
  if not k or not ARGV[at + 1] then
    return -2
  end
  local auto = true
  for o = at + 2, at + 2 * k, 2 do
    local letter = ARGV[o]
    if #letter ~= 1 or not string.find(OPTIONS, letter, 1, true) or not ARGV[o + 1] then
      return -2
    end
    if letter == 'i' then
      auto = false
    end
  end
  if auto then
    autoCount = autoCount + 1
  end
  at = at + 2 + 2 * k
end
if #ARGV ~= 7 + (at - 8) then
  return -2
end

local now, nowS = storeNowS()
local reply = { now }
local nReply = 1
local batch = readyBatch()
local scheduled = {}
local created = 0
-- The parks, read once (the handoff below uses them), and with some waiting, the records of the jobs
-- made ready, for the handoff messages.
local parked = parksRead(activeKey)
local fieldsOf = #parked > 0 and {} or nil

-- The highest digits-only id a caller chose (ix), or nil where the queue predates ix: automatic ids
-- at or below it are checked for a record, above it they cannot have one.
local chosenMax = tonumber(redis.call('HGET', countersKey, 'ix'))
local chosenMaxWas = chosenMax
if not chosenMax and redis.call('HEXISTS', countersKey, 'e') == 0 then
  chosenMax = 0 -- a queue's first add: nothing chosen yet
end
local nextAuto = 0
if autoCount > 0 then
  nextAuto = redis.call('HINCRBY', countersKey, 'id', string.format('%d', autoCount)) - autoCount
end
local function takeAutoId()
  while true do
    local n
    if autoCount > 0 then
      autoCount = autoCount - 1
      nextAuto = nextAuto + 1
      n = nextAuto
    else
      n = redis.call('HINCRBY', countersKey, 'id', '1')
    end
    local id = string.format('%d', n)
    if (chosenMax and n > chosenMax) or not recordExists(jobPrefix, id) then
      return id
    end
  end
end

-- The compact records of this call's jobs with every default: id, value pairs, written (one HSET
-- per bucket) before a job with options is added (its id checks see them) and at the end.
local compact, nCompact = {}, 0
local function compactFlush()
  if nCompact > 0 then
    compactWrite(jobPrefix, compact)
    compact, nCompact = {}, 0
  end
end

-- A job with options: its record, its place (ready list, group or schedule); the reply's id and
-- duplicate flag.
local function addWithOptions(data, job)
  compactFlush()
  local id = job.i
  local duplicateOf = nil
  if id and recordExists(jobPrefix, id) then
    duplicateOf = id
  end
  if not duplicateOf and not id then
    id = takeAutoId()
  end
  if not duplicateOf and job.u then
    local held = redis.call('SET', uniquePrefix .. job.u, id, 'NX', 'PX', job.U or '1', 'GET')
    if held then
      duplicateOf = held
    end
  end
  if duplicateOf then
    return duplicateOf, 1
  end
  local runAt = now
  if job.r then
    runAt = tonumber(job.r)
  elseif job.D then
    runAt = now + tonumber(job.D)
  end
  local priority = job.p or '0'
  local fields = { 'd', data, 'c', nowS }
  local function put(letter, value)
    fields[#fields + 1] = letter
    fields[#fields + 1] = value
  end
  if job.n then
    put('n', job.n)
  end
  if priority ~= '0' then
    put('p', priority)
  end
  if runAt ~= now then
    put('r', runAt)
    if runAt < now then
      -- Due already: it becomes ready now (a fill wait counts from here, not from the past run-at).
      put('y', nowS)
    end
  end
  for _, letter in ipairs({ 'm', 't', 'u', 'R' }) do
    if job[letter] then
      put(letter, job[letter])
    end
  end
  if job.q and job.q ~= '1' then
    put('q', job.q)
  end
  if job.T then
    put('T', job.T)
  end
  if job.G then
    put('G', job.G)
  end
  redis.call('HSET', jobPrefix .. id, unpack(fields))
  if job.i and chosenMax and string.find(id, '^[1-9]%d*$') then
    -- Beyond 15 digits no automatic id will reach it (and a double would not hold it exactly).
    local n = #id <= 15 and tonumber(id) or 0
    if n > chosenMax then
      chosenMax = n
    end
  end
  if runAt > now then
    scheduled[#scheduled + 1] = runAt
    scheduled[#scheduled + 1] = id
  elseif job.G then
    -- Ready jobs before it go first, so the ready lists keep the order of the add.
    readyFlush(batch, readyPrefix, prioritiesKey)
    batch = readyBatch()
    groupPush(groupPrefix, job.G, priority, id, false, readyPrefix, prioritiesKey)
  else
    readyAdd(batch, priority, id)
    if fieldsOf then
      fieldsOf[id] = fields
    end
  end
  created = created + 1
  return id, 0
end

at = 8
for _ = 1, count do
  local k = ARGV[at] == '0' and 0 or tonumber(ARGV[at])
  local data = ARGV[at + 1]
  local id, duplicate
  if k == 0 then
    -- Every option at its default: an automatic id, a compact record of creation time and payload.
    id, duplicate = takeAutoId(), 0
    nCompact = nCompact + 2
    compact[nCompact - 1] = id
    compact[nCompact] = compactValue(nowS, data)
    readyAdd(batch, '0', id)
    if fieldsOf then
      fieldsOf[id] = { 'd', data, 'c', nowS }
    end
    created = created + 1
  else
    local job = {}
    for o = at + 2, at + 2 * k, 2 do
      job[ARGV[o]] = ARGV[o + 1]
    end
    id, duplicate = addWithOptions(data, job)
  end
  reply[nReply + 1] = id
  reply[nReply + 2] = duplicate
  nReply = nReply + 2
  at = at + 2 + 2 * k
end
compactFlush()

-- Handoff: only when nothing was ready before (grouped jobs of this add are ready by now too), so
-- the jobs handed over are the ones a reserve would take next.
local handed = 0
if fieldsOf and #batch.order > 0 and redis.call('ZCARD', prioritiesKey) == 0 and redis.call('HGET', settingsKey, 'p') ~= '1' then
  local parks = parksOpen(activeKey, parked, now)
  if #parks > 0 then
    if #batch.order > 1 then
      table.sort(batch.order, function(a, b)
        return tonumber(a) < tonumber(b)
      end)
    end
    local queued, priorityOf = {}, {}
    for _, p in ipairs(batch.order) do
      for _, id in ipairs(batch.lists[p]) do
        queued[#queued + 1] = id
        priorityOf[#queued] = p
      end
    end
    local next = 1
    for _, park in ipairs(parks) do
      if next > #queued then
        break
      end
      local ids = {}
      for i = next, math.min(#queued, next + park.jobs - 1) do
        ids[#ids + 1] = queued[i]
      end
      next = next + #ids
      local token = string.format('%d.%s.%d', redis.call('HINCRBY', countersKey, 'tk', '1'), nowS, #ids)
      leaseOpen(activeKey, token, ids, string.format('%d', now + park.leaseMs), park.workerId)
      parkTake(activeKey, park, #ids)
      publish(handoffPrefix .. park.id, parkMessage(park, nowS, token, ids, fieldsOf))
    end
    -- What no park took stays ready, in order.
    local rest = readyBatch()
    for i = next, #queued do
      readyAdd(rest, priorityOf[i], queued[i])
    end
    batch = rest
    handed = next - 1
  end
end
readyFlush(batch, readyPrefix, prioritiesKey)
if #scheduled > 0 then
  callChunked('ZADD', scheduledKey, scheduled)
end
if chosenMax and chosenMax ~= chosenMaxWas then
  redis.call('HSET', countersKey, 'ix', chosenMax)
end
if created > 0 then
  redis.call('HINCRBY', countersKey, 'e', string.format('%d', created))
  if created > handed then
    publish(wakeChannel, '')
  end
end
return reply
