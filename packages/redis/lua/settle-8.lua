--[[
  settle: applies many outcomes of one queue's jobs at once, each only if the job is still held by
  the lease of its token (includes/leases.lua): the leases of the call are read in one step and
  released in one step.

  A settlement's kind is one of the outcome names (`OutcomeKind` in @sluice/core), and the event
  written for it on the stream has the same kind:

    completed  the job finishes (result kept unless its retention deletes it)
    retrying   the error is recorded and the job is due again delayMs after the store's now
    dead       dead-lettered with a reason (and the error, if one is given)
    snoozed    due again after delayMs; the attempt is given back
    cancelled  the job finishes as cancelled with a reason
  A job of a group (field G; see includes/groups.lua) gives its group slot back, except a retry
  with a delay: it keeps the slot through its backoff (field H) and goes to the front of its group
  when due. A retry without a delay goes to the front of its group at once; a snoozed job queues at
  the back, unless it is handed back (b = '1'): then it goes to the head of its group or priority.

  Counters, per-minute history and the event stream are updated in the same call. Afterwards the
  finished list is trimmed to the queue's retention (defaultRetention if the queue has none) and the
  dead list to its dead retention (defaultDeadRetention if none).

  KEYS:
    1  settings    hash    queue settings (r / rd = the queue's retention / dead retention)
    2  priorities  zset    priorities that have ready jobs
    3  scheduled   zset    scheduled job ids by run-at
    4  active      zset    lease tokens by deadline (includes/leases.lua)
    5  dead        list    dead-letter ids, newest first
    6  finished    list    completed and cancelled jobs, newest first (includes/finished.lua)
    7  counters    hash    totals (c completed, f failed, d dead, x cancelled), counts (nc, nx) and
                           the finished list's jobs in runs beyond their first (fr)
    8  events      stream  job outcome events

  ARGV:
    1  jobPrefix         prefix of job record keys
    2  readyPrefix       prefix of the per-priority ready lists
    3  historyPrefix     prefix of the per-minute history hashes
    4  eventsMaxLen      approximate cap of the event stream (0: no events)
    5  historyTtlMs      how long a per-minute history hash lives
    6  defaultRetention  retention of a queue that sets none (n | c<count> | a<ms>)
    7  maxErrors         attempt errors kept per job (the first and the latest maxErrors - 1)
    8  defaultDeadRetention  dead retention of a queue that sets none (k | n | c<count> | a<ms> | c<count>a<ms>)
    9  groupPrefix       prefix of the group keys (includes/groups.lua)
    10 wakeChannel       channel told when the queue had no ready job and now has some (a freed
                         group slot released its group's next turn, a retry or hand-back without a
                         delay): workers that found nothing to reserve are sleeping
    11 count             number of settlements that follow
    12… entries, in the order of their settlements, each one of:
      S, id, token, kind, a, b, hint   one settlement of any kind (6 values after the S); token
                                       '' for the token of the settlement before it (the jobs
                                       of one lease share theirs)
      C, token, k, ids                 k jobs completed with no result, each with the hint `|||`,
                                       their ids joined by NUL bytes in one value (no id holds
                                       one); token as above. Their event is that value as it is
                                       (includes/events.lua), and so is their finished-list
                                       entry when all k are applied (a run, includes/finished.lua).
                                       Their records are not written: they are completed in the
                                       finished index (includes/leases.lua)
    where a and b depend on the kind:
    completed  a = result JSON ('' = no result)
    retrying   a = delayMs, b = error JSON
    dead       a = reason, b = error JSON ('' = none)
    snoozed    a = delayMs, b = '1' to go back to the head of its group (or priority) when delayMs
               is 0 (a start gate's hand-back), '1:<at>:<units>' the same, giving back `units` its
               group's rate-limit log recorded at `at` (no work used them; a group held back by its
               limit takes turns again), else ''
    cancelled  a = reason
    and hint is what the lease found in the job's record, `<a>|<p>|<R>|<G>` (attempts ended,
    priority, own retention, group; empty where the record has none), or '' when the caller does
    not know it: then the record is read. None of these fields changes while a lease holds the job,
    and the hint is used only when the token still holds it, so it saves a read per job.

  Returns:
    { now, codes }: one character per settlement, in the order given: 1 applied, 0 not found,
    2 lease lost.

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
--- @include "includes/limiter.lua"
--- @include "includes/publish.lua"
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"

-- The record fields a settle reads (a, p, G, R) of a job that has none of them; never written to.
local NO_FIELDS = { false, false, false, false }
local settingsKey, prioritiesKey, scheduledKey, activeKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local deadKey, finishedKey, countersKey, eventsKey = KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local jobPrefix, readyPrefix, historyPrefix = ARGV[1], ARGV[2], ARGV[3]
local eventsMaxLen = tonumber(ARGV[4])
local historyTtlMs = tonumber(ARGV[5])
local defaultRetention = ARGV[6]
local maxErrors = tonumber(ARGV[7])
local defaultDeadRetention = ARGV[8]
local groupPrefix = ARGV[9]
local wakeChannel = ARGV[10]
local count = tonumber(ARGV[11])
if not (count and eventsMaxLen and historyTtlMs and maxErrors) then
  return -2
end
local KINDS = { completed = true, retrying = true, dead = true, snoozed = true, cancelled = true }
-- First pass, before any write: the entries are whole (a first token is not ''), every settlement's
-- id in order, and the runs of settlements under one token (where each starts, and its token: a
-- token per run, not per job). The ids of a `C` entry of several jobs are split only where they are
-- read one by one (splitIds), and counted then, still before any write (the runs below): a lease
-- given back whole never is, and need not be, its ids being the lease's own, which held k of them
-- when it was written (counting the NUL bytes of every entry here, a gsub matching its pattern at
-- every byte, was 1,400 instructions a job of a settle of 1,000: bench/README.md).
local argv = ARGV
local find, sub = string.find, string.sub
local ids = {}
local nIds = 0
-- Settlement number -> joined ids of the `C` entry of several jobs that starts there, not split yet,
-- and its number of jobs (k).
local unsplit, unsplitK = {}, {}
-- Fills ids[from], ids[from + 1], ... with the ids of `joined` and answers how many (no upvalue: a
-- closure that captured this chunk's locals would cost every call more than it saves).
local function splitIds(list, from, joined)
  local p, n = 1, from - 1
  local sfind, ssub = string.find, string.sub
  while true do
    local q = sfind(joined, '\0', p, true)
    n = n + 1
    if not q then
      list[n] = ssub(joined, p)
      return n - from + 1
    end
    list[n] = ssub(joined, p, q - 1)
    p = q + 1
  end
end
local runStarts, runTokens, nRuns = {}, {}, 0
-- Per run: the joined ids of its `C` entry when that entry is all of the run, else false.
local runJoined = {}
local at = 12
local t = nil
while argv[at] do
  local form = argv[at]
  local k, tokenAt
  if form == 'C' then
    k, tokenAt = tonumber(argv[at + 2]), at + 1
    if not k or k < 1 then
      return -2
    end
  elseif form == 'S' then
    k, tokenAt = 1, at + 2
    if not KINDS[argv[at + 3]] or not argv[at + 6] then
      return -2 -- an unknown kind or a short entry
    end
  else
    return -2
  end
  if argv[tokenAt] ~= '' then
    t = argv[tokenAt]
  elseif nIds == 0 then
    return -2 -- a first token '' (no settlement before it)
  end
  if runTokens[nRuns] ~= t then
    nRuns = nRuns + 1
    runStarts[nRuns] = nIds + 1
    runTokens[nRuns] = t
    runJoined[nRuns] = form == 'C' and argv[at + 3]
  else
    runJoined[nRuns] = false
  end
  if form == 'C' then
    -- The run's ids, joined by NUL bytes: exactly k of them.
    local joined = argv[at + 3]
    if not joined then
      return -2
    end
    if k == 1 then
      if find(joined, '\0', 1, true) then
        return -2
      end
      ids[nIds + 1] = joined
    else
      unsplit[nIds + 1] = joined
      unsplitK[nIds + 1] = k
    end
    nIds = nIds + k
    at = at + 4
  else
    nIds = nIds + 1
    ids[nIds] = argv[at + 1]
    at = at + 7
  end
end
if #ARGV ~= 11 + (at - 12) or nIds ~= count then
  return -2
end

local now, nowS = storeNowS()
-- Whether the queue had ready jobs before this call, read before the first change that can make a
-- job ready (a requeue, a freed group slot); nil while nothing did (a call of completions of
-- ungrouped jobs reads nothing for it).
local hadReady = nil
local function readying()
  if hadReady == nil then
    hadReady = redis.call('EXISTS', prioritiesKey) == 1
  end
end
-- Gives a job's group slot back (its group's next turn may become ready).
local function freeSlot(g)
  readying()
  groupFree(groupPrefix, g, readyPrefix, prioritiesKey)
end
local retentions = redis.call('HMGET', settingsKey, 'r', 'rd')
local queueRetention = retentions[1] or defaultRetention
local deadRetention = retentions[2] or defaultDeadRetention
local keepFinished = queueRetention ~= 'n'
local completed, failed, dead, cancelled, keptCompleted, keptCancelled = 0, 0, 0, 0, 0, 0
local ready = readyBatch()
local finished = finishBatch()
local events = eventBatch()
local scheduled = {}

-- Back to the queue: scheduled at now + delay, or ready now (a job of group g: to the front of its
-- group with `front`, else the back; a job of no group with `front`: to the head of its priority).
local requeue = function(jobKey, id, delay, priority, g, front)
  readying()
  if delay > 0 then
    local runAt = tostring(now + delay)
    scheduled[#scheduled + 1] = runAt
    scheduled[#scheduled + 1] = id
    redis.call('HSET', jobKey, 'r', runAt)
    redis.call('HDEL', jobKey, 'y')
  else
    redis.call('HSET', jobKey, 'y', nowS)
    if g then
      groupPush(groupPrefix, g, priority, id, front, readyPrefix, prioritiesKey)
    elseif front then
      local p = priority or '0'
      redis.call('LPUSH', readyPrefix .. p, id)
      redis.call('ZADD', prioritiesKey, p, p)
    else
      readyAdd(ready, priority, id)
    end
  end
end

-- Which settlements their token still holds, decided before any of them is applied, and the
-- jobs they release taken off their leases now (includes/leases.lua). Each lease is read once. A
-- run of one `C` entry whose ids are the lease's, exactly as it was given them, releases the
-- whole lease with no work per job (a batch settled together); any other run looks its jobs up
-- in the lease. A job that comes twice in this call is held the first time only.
local held = {}
-- Settlement number -> true where a `C` entry that is a whole lease starts (applied in one step).
local whole = {}
local leases, touched, releasing = {}, {}, {}
for r = 1, nRuns do
  local t = runTokens[r]
  local first, last = runStarts[r], (runStarts[r + 1] or nIds + 1) - 1
  local lease = leases[t]
  if not lease then
    lease = leaseRead(activeKey, t)
    leases[t] = lease
    touched[#touched + 1] = t
    releasing[t] = {}
  end
  local mine = releasing[t]
  -- A run of one `C` entry whose ids are the lease's, exactly as it was given them.
  local asLease = runJoined[r] and lease.live and not lease.whole and not lease.old and #mine == 0
    and lease.released == 0 and runJoined[r] == lease.ids and last - first + 1 == lease.size
  if not asLease then
    -- Its entries' ids, split and counted before any write: an entry whose NUL bytes do not make
    -- its k ids is malformed.
    for i = first, last do
      if unsplit[i] then
        if splitIds(ids, i, unsplit[i]) ~= unsplitK[i] then
          return -2
        end
        unsplit[i] = nil
      end
    end
  end
  if not lease.live or lease.whole then
    -- Gone: every job of the run is lost.
  elseif asLease then
    lease.whole = true
    if keepFinished then
      whole[first] = true
    else
      for i = first, last do
        held[i] = true
      end
    end
  else
    local seen = lease.seen
    if not seen then
      seen = {}
      lease.seen = seen
    end
    local cand, where = {}, {}
    for i = first, last do
      local id = ids[i]
      if not seen[id] and leaseHas(lease, id) then
        cand[#cand + 1] = id
        where[#cand] = i
      end
    end
    local gone = leaseReleasedOf(activeKey, lease, cand)
    for j = 1, #cand do
      local id = cand[j]
      if not gone[j] and not seen[id] then
        seen[id] = true
        held[where[j]] = true
        mine[#mine + 1] = id
      end
    end
  end
end
local uncounted = 0
for _, t in ipairs(touched) do
  local lease = leases[t]
  local ids = releasing[t]
  if lease.whole then
    ids = nil -- all of it
  end
  uncounted = uncounted + leaseDrop(activeKey, lease, ids)
end
leaseUncount(activeKey, uncounted)
-- When the lease `token` started (from the token, once per lease).
local leaseStarts = {}
local function startOf(token)
  local g = leaseStarts[token]
  if not g then
    g = leaseStart(token) or nowS
    leaseStarts[token] = g
  end
  return g
end
local nDone = 0

local codes = {}

-- Settlement i of job id under token, read from its entry. The jobs of a `C` entry (completions of
-- first attempts at the default priority, of no group and no own retention: no record field is
-- read) are finished without a write to their records: a ranged run's jobs get one range for all
-- of them, other jobs an entry each in the finished index (includes/leases.lua, includes/finished.lua),
-- all of them in one HSET, the lease's start read once per entry; any other
-- settlement takes the general path. Inline, not functions: a closure over this many locals costs the script more than
-- its body (luaF_findupval), and a call per job more than the work it saves.
local token = nil
local pushed, deleted = finished.pushed, finished.deleted
local runLeft = 0
local started = nil
-- The finished index's entries of the jobs completed here on the fast path (includes/leases.lua):
-- id, '<finish>|<start>' pairs, the value the same for all of a lease's jobs, after its placeholder.
local indexed, nIndexed, indexValue = { '', HASH_TABLE_PLACEHOLDER }, 2, nil
-- The ranges of the ranged runs written here: score, member pairs.
local ranges = {}
-- The `C` entry being read: its joined ids, its first settlement's number, its size and how many of
-- its jobs were applied. When all were, its event is one field `C`, the joined ids as they came
-- (the client sends a job whose id holds a NUL byte as `S`); else each applied job's `c` field.
local runIds, runFirst, runSize, runApplied = nil, 0, 0, 0
-- The jobs the finished list's new run entries hold beyond their first (the counters' `fr`).
local runsAdded = 0
at = 12
local i = 1
while i <= count do
  local id, kind, a, b, hint
  -- A `C` entry that is a whole lease: all of its jobs applied at once, below.
  local bulk = false
  if runLeft > 0 then
    id = ids[i]
    runLeft = runLeft - 1
  elseif argv[at] == 'C' then
    if argv[at + 1] ~= '' then
      token = argv[at + 1]
    end
    started = nil
    runSize = tonumber(argv[at + 2])
    runLeft = runSize - 1
    runIds, runFirst, runApplied = argv[at + 3], i, 0
    at = at + 4
    if whole[i] then
      bulk = true
    else
      if unsplit[i] then
        splitIds(ids, i, runIds)
        unsplit[i] = nil
      end
      id = ids[i]
    end
  else
    id, kind, a, b, hint = argv[at + 1], argv[at + 3], argv[at + 4], argv[at + 5], argv[at + 6]
    if argv[at + 2] ~= '' then
      token = argv[at + 2]
    end
    at = at + 7
  end
  if bulk then
    -- Every job of the entry completed with no result, its first attempt (kept: whole[] is set only
    -- then); one code string, the rest of its codes empty.
    codes[i] = string.rep('1', runSize)
    for j = i + 1, i + runSize - 1 do
      codes[j] = ''
    end
    nDone = nDone + runSize
    completed = completed + runSize
    keptCompleted = keptCompleted + runSize
    runApplied, runLeft = runSize, 0
    started = startOf(token)
    indexValue = nowS .. '|' .. started
  elseif not held[i] then
    codes[i] = recordExists(jobPrefix, id) and '2' or '0'
  else
    codes[i] = '1'
    nDone = nDone + 1
    if not kind then
      -- A job of a `C` entry: completed with no result, its first attempt.
      if keepFinished then
        if not started then
          started = startOf(token)
          indexValue = nowS .. '|' .. started
        end
        keptCompleted = keptCompleted + 1
      else
        deleted[#deleted + 1] = id
      end
      completed = completed + 1
      runApplied = runApplied + 1
    else
      local jobKey = jobPrefix .. id
      -- Every settlement here writes the record: a compact one becomes a hash of its own first.
      recordOwn(jobPrefix, id)
      -- The record's attempts ended, priority, group and own retention: from the hint, else read.
      local f
      if hint == '|||' then
        f = NO_FIELDS -- a first attempt at the default priority, of no group and no own retention
      else
        local ha, hp, hr, hg = string.match(hint, '^([^|]*)|([^|]*)|([^|]*)|(.*)$')
        if ha then
          f = { ha ~= '' and ha, hp ~= '' and hp, hg ~= '' and hg, hr ~= '' and hr }
        else
          f = redis.call('HMGET', jobKey, 'a', 'p', 'G', 'R')
        end
      end
      -- The attempt that ends now: the record counts the ones that ended before it ('%d': a number
      -- given to Redis as is would be printed as a float, %.14g, several times slower).
      local attempt, attemptS = 1, '1'
      if f[1] then
        attempt = (tonumber(f[1]) or 0) + 1
        attemptS = string.format('%d', attempt)
      end
      if kind == 'completed' then
        local kept
        if a ~= '' then
          kept = finishJob(finished, jobKey, id, 'c', nowS, f[4], queueRetention, 'a', attemptS, 'g', startOf(token), 'o', a)
        else
          kept = finishJob(finished, jobKey, id, 'c', nowS, f[4], queueRetention, 'a', attemptS, 'g', startOf(token))
        end
        if kept then
          keptCompleted = keptCompleted + 1
        end
        completed = completed + 1
        if a == '' then
          local n = #events -- completed with no result: `c` id (includes/events.lua)
          events[n + 1] = 'c'
          events[n + 2] = id
        else
          eventAdd(events, id, kind, 'r', a)
        end
        if f[3] then
          freeSlot(f[3])
        end
      elseif kind == 'cancelled' then
        if finishJob(finished, jobKey, id, 'x', nowS, f[4], queueRetention, 'a', attemptS, 'g', startOf(token), 'x', a) then
          keptCancelled = keptCancelled + 1
        end
        cancelled = cancelled + 1
        eventAdd(events, id, kind, 'x', a)
        if f[3] then
          freeSlot(f[3])
        end
      else
        local g = f[3]
        if kind == 'retrying' then
          redis.call('HSET', jobKey, 'a', attemptS, 'g', startOf(token))
          recordError(jobKey, b, attempt, nowS, maxErrors)
          failed = failed + 1
          local delay = math.max(0, tonumber(a) or 0)
          requeue(jobKey, id, delay, f[2], g, g ~= nil)
          if g and delay > 0 then
            redis.call('HSET', jobKey, 'H', '1') -- keeps its group slot until due
          elseif g then
            freeSlot(g)
          end
          eventAdd(events, id, kind, 'e', b)
        elseif kind == 'dead' then
          redis.call('HSET', jobKey, 'a', attemptS, 'g', startOf(token))
          if b ~= '' then
            recordError(jobKey, b, attempt, nowS, maxErrors)
            failed = failed + 1
          end
          deadLetter(jobKey, deadKey, id, a, nowS)
          dead = dead + 1
          eventAdd(events, id, kind, 'x', a, 'e', b)
          if g then
            freeSlot(g)
          end
        else
          -- Snoozed: the attempt is given back (the record's count stays).
          redis.call('HSET', jobKey, 'a', string.format('%d', attempt - 1), 'g', startOf(token))
          if g then
            freeSlot(g)
          end
          local front, unusedAt, unusedUnits = string.match(b, '^(1):(%d+):(%d+)$')
          if front and g then
            -- Its group's log has room again: a group held back by it takes turns again.
            limiterRefundKey(groupPrefix .. 'l:' .. g, tonumber(unusedAt), tonumber(unusedUnits))
            redis.call('HDEL', groupPrefix .. 's:' .. g, 'l')
          end
          requeue(jobKey, id, math.max(0, tonumber(a) or 0), f[2], g, front ~= nil or b == '1')
          eventAdd(events, id, kind)
        end
      end
    end
  end
  if not kind and runLeft == 0 and runApplied > 0 then
    -- The last job of a `C` entry: its events (includes/events.lua) and its finished-list entry
    -- (includes/finished.lua), each the joined ids as they came when all of its jobs were applied.
    local n = #events
    if runApplied == runSize and runSize > 1 then
      events[n + 1] = 'C'
      events[n + 2] = runIds
      if keepFinished then
        -- Ranged when its ids are the decimals x, x + 1, ... of one length (three digits or more),
        -- checked a hundred at a time: the ids a hundred should be, joined from its leading digits
        -- and the two-digit endings (constants: no string is made per id), compared with its part
        -- of the entry, the NUL byte after it included. (A gsub that took the leading digits off
        -- every id matched its pattern at every byte: 950 instructions a job, bench/README.md.)
        local first = ids[runFirst] or sub(runIds, 1, find(runIds, '\0', 1, true) - 1)
        local d = #first
        local x = d <= 15 and tonumber(first)
        if x and (x < 1 or x % 1 ~= 0 or not find(first, '^[1-9]')) then
          x = false
        end
        if x and x < 100 and unsplit[runFirst] then
          splitIds(ids, runFirst, runIds) -- read one by one below
          unsplit[runFirst] = nil
        end
        if x and x < 100 then
          -- A queue's first ids, one by one.
          for j = 0, runSize - 1 do
            if ids[runFirst + j] ~= string.format('%d', x + j) then
              x = false
              break
            end
          end
        elseif x and #runIds ~= runSize * (d + 1) - 1 then
          x = false
        elseif x then
          local endings = { '00\0', '01\0', '02\0', '03\0', '04\0', '05\0', '06\0', '07\0', '08\0', '09\0', '10\0', '11\0', '12\0', '13\0', '14\0', '15\0', '16\0', '17\0', '18\0', '19\0', '20\0', '21\0', '22\0', '23\0', '24\0', '25\0', '26\0', '27\0', '28\0', '29\0', '30\0', '31\0', '32\0', '33\0', '34\0', '35\0', '36\0', '37\0', '38\0', '39\0', '40\0', '41\0', '42\0', '43\0', '44\0', '45\0', '46\0', '47\0', '48\0', '49\0', '50\0', '51\0', '52\0', '53\0', '54\0', '55\0', '56\0', '57\0', '58\0', '59\0', '60\0', '61\0', '62\0', '63\0', '64\0', '65\0', '66\0', '67\0', '68\0', '69\0', '70\0', '71\0', '72\0', '73\0', '74\0', '75\0', '76\0', '77\0', '78\0', '79\0', '80\0', '81\0', '82\0', '83\0', '84\0', '85\0', '86\0', '87\0', '88\0', '89\0', '90\0', '91\0', '92\0', '93\0', '94\0', '95\0', '96\0', '97\0', '98\0', '99\0' }
          local parts = {}
          local v, pos, y = x, 1, x + runSize - 1
          while v <= y do
            local last = math.min(y, v - v % 100 + 99)
            local lead = string.format('%d', (v - v % 100) / 100)
            local stop = pos + (last - v + 1) * (d + 1) - 2
            local n = 0
            for e = v % 100 + 1, last % 100 + 1 do
              parts[n + 1] = lead
              parts[n + 2] = endings[e]
              n = n + 2
            end
            -- The last hundred has no NUL byte after it: one is added to its part.
            local part = last == y and sub(runIds, pos, stop) .. '\0' or sub(runIds, pos, stop + 1)
            if #lead ~= d - 2 or part ~= table.concat(parts, '', 1, n) then
              x = false
              break
            end
            pos = stop + 2
            v = last + 1
          end
        end
        if x then
          pushed[#pushed + 1] = 'R' .. runSize .. '|' .. nowS .. '|' .. started .. '|' .. runIds
          ranges[#ranges + 1] = first
          ranges[#ranges + 1] = first .. '|' .. runSize .. '|' .. nowS .. '|' .. started -- finishedRangeMember
        else
          if unsplit[runFirst] then
            splitIds(ids, runFirst, runIds)
            unsplit[runFirst] = nil
          end
          pushed[#pushed + 1] = 'C' .. runSize .. '|' .. nowS .. '|' .. runIds
          for j = runFirst, runFirst + runSize - 1 do
            indexed[nIndexed + 1] = ids[j]
            indexed[nIndexed + 2] = indexValue
            nIndexed = nIndexed + 2
          end
        end
        runsAdded = runsAdded + runSize - 1
      end
    else
      for j = runFirst, runFirst + runSize - 1 do
        if codes[j] == '1' then
          events[n + 1] = 'c'
          events[n + 2] = ids[j]
          n = n + 2
          if keepFinished then
            pushed[#pushed + 1] = 'c' .. ids[j]
            indexed[nIndexed + 1] = ids[j]
            indexed[nIndexed + 2] = indexValue
            nIndexed = nIndexed + 2
          end
        end
      end
    end
  end
  i = i + (bulk and runSize or 1)
end

finishFlush(finished, finishedKey, jobPrefix)
if runsAdded > 0 then
  redis.call('HINCRBY', countersKey, 'fr', runsAdded)
end
if nIndexed > 2 then
  callChunked('HSET', finishedIndexKey(activeKey), indexed)
end
if #ranges > 0 then
  callChunked('ZADD', activeKey .. ':r', ranges) -- finishedRangesKey
end
readyFlush(ready, readyPrefix, prioritiesKey)
callChunked('ZADD', scheduledKey, scheduled)
if hadReady == false and redis.call('EXISTS', prioritiesKey) == 1 then
  publish(wakeChannel, '')
end

local trimmed = applyRetention(finishedKey, activeKey, countersKey, jobPrefix, queueRetention, now, 1000 + nDone)
applyDeadRetention(deadKey, jobPrefix, deadRetention, now, 1000 + nDone)
local counts = {
  'c', completed, 'f', failed, 'd', dead, 'x', cancelled,
  'nc', keptCompleted - trimmed.c, 'nx', keptCancelled - trimmed.x,
}
for i = 1, #counts, 2 do
  if counts[i + 1] ~= 0 then
    redis.call('HINCRBY', countersKey, counts[i], counts[i + 1])
  end
end
bumpHistory(historyPrefix, historyTtlMs, now, completed, failed)
eventFlush(eventsKey, eventsMaxLen, events, nowS, ARGV[4])
return { now, table.concat(codes) }
