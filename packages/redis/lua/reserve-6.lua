--[[
  reserve: in one atomic step, checks the pause flag, promotes due scheduled jobs (at most
  maxPromote), applies the fill rule (whole batches only, while the head job is younger than the
  fill wait), checks the rate limit on the store clock, pops up to n ready jobs (lowest priority
  first, FIFO within a priority) and leases them, all under one lease of the call's token
  (includes/leases.lua): its deadline, start and worker are written once, the job records not at all.

  Only jobs actually leased spend the rate limit: an empty queue spends nothing, and with per-call
  limits m jobs spend ceil(m / jobsPerCall) units. With per-job limits a job spends its cost (field
  q, default 1, at most the smallest `allowed`), all at one slot; jobs popped beyond what the limits
  grant go back to the head of their ready lists, in order. Further limits (KEYS 7…) are checked
  with the first at the same slots: a unit goes where every one has room. Every job leased by one call carries the same
  token (a lease is the pair job id + token, and a job is leased once per call).

  Groups (job field G; see includes/groups.lua): the ready lists hold one turn per group, so popping
  them serves groups round-robin. A popped turn takes a slot of its group; when the group already
  holds groupConcurrency slots the job goes back to the front of its group (not leased, not
  counted) and the group waits for a slot to free. A leased job's group releases its next turn at
  the back while it has room (a group with a weight w, at the front for w turns in a row).

  Group rate limits (groupLimitAllowed > 0): each job of a group is also recorded in its group's log
  (`<groupPrefix>l:<group>`, includes/limiter.lua), at the same slot as in the queue's limits: jobs
  are placed one by one, each where every log it counts in has room. A job whose group's log has no
  room by the latest slot goes back to the front of its group, which is held back until its log has
  room (includes/groups.lua, groupHoldBack; due groups are promoted at the start of each reserve, at
  most maxPromote); a job the queue's own limits cannot place goes back to the head of its group (or
  its ready list) with the jobs popped after it, and the reserve stops. Slots are then answered in
  time order (jobs sorted by slot, stably: a group's jobs keep their order). Records are
  returned whole (HGETALL) and checked by the client, which dead-letters malformed ones with the
  reject script; an id whose record is gone is dropped from the ready list and reported.

  KEYS:
    1  settings    hash    queue settings (p = 1 while paused)
    2  priorities  zset    priorities that have ready jobs
    3  scheduled   zset    scheduled job ids by run-at
    4  active      zset    lease tokens by deadline (includes/leases.lua)
    5  counters    hash    sequences (tk: lease tokens)
    6  limiter     hash    the rate-limit log (not touched when limitAllowed is 0)
    7… the logs of further limits (ARGV 27)

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
                      frees, so no slot goes unused while the next reserve travels), or as far
                      ahead as any caller of the limit asked in the last 10 s, if further
                      (limiterAhead: a quick caller is not starved by slower ones looking further)
    13 maxActive      -1 (no cap), or: at most this many of the queue's jobs leased at once, across
                      every worker
    14 capCheckMs     nextCheckInMs to answer when maxActive held the reserve back
    15 limitMarginMs  the part of limitPeriodMs that is a margin (kept under store-wide numbers)
    16 workerId       the worker taking the lease, kept with it ('': none)
    17 groupPrefix    prefix of the group keys (includes/groups.lua)
    18 groupConcurrency  -1 (no cap), or: at most this many jobs of one group leased at once, across
                      every worker
    19 limitSpread    1: at most the tightest limit's rate per ms (rounded up) of this call's units
                      at one ms, the next one a ms or more later (see limiterPlan's perMs); 0: each
                      unit at the first time with room
    20 groupLimitAllowed  0 (no group limit), or units allowed per period in each group's log
    21 groupLimitPeriodMs
    22 groupLimitMarginMs the part of groupLimitPeriodMs that is a margin
    23 parkId         '' (no park), or: when fewer than n jobs are leased and the queue is not
                      paused, the rest of n is parked under this id (includes/parks.lua); only for
                      a caller with no limit, fill, cap or group rules
    24 parkSeq        the park's sequence
    25 parkTtlMs      the park takes jobs until this long after now
    26 cancelSeq      '' or the sequence of the caller's earlier park: removed first and what is
                      left of it added to n (n may then be 0: a park renewed)
    27 moreLimits     number of further limits (0…); then per limit: allowed, periodMs, marginMs

  Returns:
    { status (0 ok, 1 paused), now, retryAfterMs (-1: none), nextCheckInMs (-1: none), token,
      jobCount, partCount, the jobs' ids and records (the record before the lease: its attempt
      field is one behind): one string, or with partCount -1 two (the ids, the compact values),
      as described where the reply is built,
      missingCount, missingCount × id, slotCount, slotCount × [at,
      jobs] (under a limit or a group limit: the store times the jobs' units are recorded at, in
      time order, and how many of the jobs, in reply order, belong to each; a job under no limit at
      all is placed at now), reclaimed (what was left of the earlier park, now removed and part of
      n; 0 when all of it was handed over or it is gone), parked (the part of n parked now) }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
--- @include "includes/promote.lua"
--- @include "includes/limiter.lua"
--- @include "includes/groups.lua"
--- @include "includes/leases.lua"
--- @include "includes/parks.lua"
--- @include "includes/compact.lua"

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
local groupPrefix = ARGV[17]
local groupConcurrency = tonumber(ARGV[18])
local limitSpread = ARGV[19] == '1'
local groupLimitAllowed = tonumber(ARGV[20])
local groupLimitPeriodMs, groupLimitMarginMs = tonumber(ARGV[21]), tonumber(ARGV[22])
local parkId, parkSeq = ARGV[23], ARGV[24]
local parkTtlMs, cancelSeq = tonumber(ARGV[25]), ARGV[26]
local moreLimits = tonumber(ARGV[27])
if not moreLimits or not groupConcurrency or not groupLimitAllowed or not groupLimitPeriodMs or not groupLimitMarginMs or #ARGV ~= 27 + 3 * moreLimits or not parkTtlMs or #KEYS ~= 6 + moreLimits or not (n and leaseMs and maxPromote and fillCount and limitAllowed and jobsPerCall and leadMs and aheadMs and maxActive and capCheckMs and limitMarginMs) or n < 0 or (n == 0 and (parkId == '' or cancelSeq == '')) then
  return -2
end

-- Numbers given to redis.call are printed with %.17g (each costs more than a small command): the
-- store time and constants go as strings where a script call runs them every time.
local now, nowS = storeNowS()
local reclaimed = 0
if parkId ~= '' and cancelSeq ~= '' then
  reclaimed = parkCancel(activeKey, parkId, cancelSeq)
  n = n + reclaimed
end
if redis.call('HGET', settingsKey, 'p') == '1' or n == 0 then
  return { redis.call('HGET', settingsKey, 'p') == '1' and 1 or 0, now, -1, -1, '', 0, 0, '', 0, 0, reclaimed, 0 }
end

promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, groupPrefix, nowS, ARGV[5])
groupPromoteLimited(groupPrefix, nowS, ARGV[5], readyPrefix, prioritiesKey)

local want = n
-- Fill: until the head job has been ready fillWaitMs, reserve nothing while fewer than fillCount are
-- ready, and otherwise only whole multiples of fillCount.
if fillCount > 0 then
  local top = redis.call('ZRANGE', prioritiesKey, '0', '0')
  local head = top[1] and redis.call('LINDEX', readyPrefix .. top[1], 0)
  if head then
    local t = redis.call('HMGET', jobPrefix .. head, 'y', 'r', 'c')
    local readyAt = tonumber(t[1] or t[2] or t[3] or recordCreatedAt(jobPrefix, head))
    if readyAt and now - readyAt < fillWaitMs then
      local ready = readyCount(prioritiesKey, readyPrefix, n + fillCount) + groupWaitingCount(groupPrefix)
      if ready < fillCount then
        return { 0, now, -1, fillWaitMs - (now - readyAt), '', 0, 0, '', 0, 0, reclaimed, 0 }
      end
      want = math.min(n, math.floor(ready / fillCount) * fillCount)
    end
  end
end
-- Global concurrency: the jobs leased now, by every worker.
local capped = false
if maxActive >= 0 then
  local room = math.max(0, maxActive - leaseCount(activeKey))
  if room < want then
    want = room
    capped = true
  end
end
local Ls = nil
local reach = 0
local perMs = nil
local plan = nil
local planRetry = -1
if limitAllowed > 0 then
  Ls = limiterOpenAll(limiterKey, limitAllowed, limitPeriodMs, limitMarginMs, 6, 27, moreLimits, now)
  if not Ls then
    return -2
  end
  -- As far ahead as any caller of the limit looked lately, so that callers whose answers come
  -- quickly (a short lead) are not left only the capacity slower callers did not take first.
  reach = limiterAhead(Ls[1], math.max(leadMs, aheadMs))
  if limitSpread then
    perMs = limiterPerMs(Ls)
  end
  -- At one unit a job (or call) at most this many can go: pop no more than that.
  local granted
  plan, granted, planRetry = limiterPlan(Ls, math.ceil(want / jobsPerCall), nil, now + leadMs, now + reach, false, perMs)
  want = math.min(want, granted * jobsPerCall)
end
-- Pop the jobs first (records read whole), lease them once the limit's plan is final.
-- Ids popped, and their records (parallel lists: no table per job): poppedF the fields of a record
-- of its own (as HGETALL answers them), or for a compact record (includes/compact.lua) NO_FIELDS
-- or nothing, and its value in poppedV.
local popped, poppedF, poppedV = {}, {}, {}
local NO_FIELDS = {}
local missing = {}
-- The group and priority of a record (as HGETALL answers it).
local function groupOf(f)
  local g, p = nil, '0'
  for j = 1, #f, 2 do
    if f[j] == 'G' then
      g = f[j + 1]
    elseif f[j] == 'p' then
      p = f[j + 1]
    end
  end
  return g, p
end
-- Under group limits each job is placed as it is popped (see placeJob).
local perGroup = groupLimitAllowed > 0
-- Groups with weights (includes/groups.lua, <gp>wt): read once, so a queue without costs nothing.
local groupWeights = redis.call('EXISTS', groupPrefix .. 'wt') == 1
local earliest, latest = now + leadMs, now + math.max(leadMs, aheadMs, reach)
local groupLogs = {}
local placedAt = {}
local limitedRetry = -1
-- A job's cost (field q, default 1), at most the smallest allowed of `logs`.
local function costOf(f, logs)
  local w = 1
  for j = 1, #f, 2 do
    if f[j] == 'q' then
      w = math.floor(tonumber(f[j + 1]) or 1)
      break
    end
  end
  for _, L in ipairs(logs) do
    w = math.min(w, L.allowed)
  end
  return math.max(1, w)
end
-- Places a popped job (group g, or nil) in the queue's limits and its group's log, at one slot:
-- returns the slot, or nil and who is short ('group' or 'queue') and how much later there is room.
local function placeJob(f, g)
  local logs = {}
  for _, L in ipairs(Ls or {}) do
    logs[#logs + 1] = L
  end
  local GL = nil
  if g then
    GL = groupLogs[g]
    if not GL then
      GL = limiterOpen(groupPrefix .. 'l:' .. g, groupLimitAllowed, groupLimitPeriodMs, groupLimitMarginMs, now)
      groupLogs[g] = GL
    end
    logs[#logs + 1] = GL
  end
  if #logs == 0 then
    return now
  end
  local cost = { costOf(f, logs) }
  local slots, granted, retry = limiterPlan(logs, 1, cost, earliest, latest, false)
  if granted == 1 then
    limiterCommit(logs, slots, 1, cost)
    return slots[1][1]
  end
  if GL and Ls then
    local _, alone, retryAlone = limiterPlan({ GL }, 1, cost, earliest, latest, false)
    if alone == 1 then
      return nil, 'queue', retry
    end
    return nil, 'group', retryAlone
  end
  if GL then
    return nil, 'group', retry
  end
  return nil, 'queue', retry
end
-- Ids without a record, and turns of full groups, do not count towards `want`; a bounded number of
-- them is handled per call.
local spare = 1000
local np = 0 -- #popped
-- Whether a popped job was read from a hash of its own (or under group limits): the reply then
-- answers the records job by job (below).
local ownRecords = perGroup
while np < want and spare > 0 and limitedRetry < 0 do
  -- With weights a take may put its group's next turn at the front: pop turns one at a time.
  local ids = readyPop(prioritiesKey, readyPrefix, groupWeights and 1 or want - np)
  if #ids == 0 then
    break
  end
  -- The compact records of the whole pop, one read per bucket; the others each by itself.
  local values = compactRead(jobPrefix, ids)
  local nIds = #ids
  -- The common pop, the call's first with every record compact and no group limits: its lists are
  -- the call's (popped, poppedV; poppedF is not read for a compact record), not copied job by job.
  local whole = np == 0 and not perGroup
  if whole then
    for k = 1, nIds do
      if not values[k] then
        whole = false
        break
      end
    end
  end
  if whole then
    popped, poppedV, np = ids, values, nIds
  end
  for k = whole and nIds + 1 or 1, nIds do
    local id, v = ids[k], values[k]
    if v and not perGroup then
      -- A compact record: no group, priority or cost (includes/compact.lua).
      np = np + 1
      popped[np] = id
      poppedF[np] = NO_FIELDS
      poppedV[np] = v
    else
      ownRecords = true
      local f = v and NO_FIELDS or redis.call('HGETALL', jobPrefix .. id)
      if not v and #f == 0 then
        spare = spare - 1
        missing[#missing + 1] = id
      else
        -- groupOf(f), written out: it runs for every job popped.
        local g, p = nil, '0'
        for j = 1, #f, 2 do
          local name = f[j]
          if name == 'G' then
            g = f[j + 1]
          elseif name == 'p' then
            p = f[j + 1]
          end
        end
        if not g or groupTake(groupPrefix, g, id, p, groupConcurrency, readyPrefix, prioritiesKey, groupWeights) then
          if perGroup then
            local at, short, retry = placeJob(f, g)
            if at then
              np = np + 1
              popped[np] = id
              poppedF[np] = f
              poppedV[np] = v
              placedAt[np] = at
            elseif short == 'group' then
              -- The group's log is full: the group waits, out of the ring, until it has room.
              groupHoldBack(groupPrefix, g, id, p, now + retry, readyPrefix, prioritiesKey)
              spare = spare - 1
            else
              -- The queue's limits are full: this job and the ones popped after it go back, in order.
              for j = #ids, k + 1, -1 do
                redis.call('LPUSH', readyPrefix .. p, ids[j])
              end
              if g then
                groupPush(groupPrefix, g, p, id, true, readyPrefix, prioritiesKey)
                groupFree(groupPrefix, g, readyPrefix, prioritiesKey)
              else
                redis.call('LPUSH', readyPrefix .. p, id)
              end
              redis.call('ZADD', prioritiesKey, p, p)
              limitedRetry = retry
              break
            end
          else
            np = np + 1
            popped[np] = id
            poppedF[np] = f
            poppedV[np] = v
          end
        else
          spare = spare - 1
        end
      end
    end
  end
end
if perGroup and #popped > 1 then
  -- Answered in time order: jobs sorted by slot, stably.
  local order = {}
  for i = 1, #popped do
    order[i] = i
  end
  table.sort(order, function(x, y)
    if placedAt[x] ~= placedAt[y] then
      return placedAt[x] < placedAt[y]
    end
    return x < y
  end)
  local sortedJobs, sortedF, sortedV, sortedAt = {}, {}, {}, {}
  for i, j in ipairs(order) do
    sortedJobs[i] = popped[j]
    sortedF[i] = poppedF[j]
    sortedV[i] = poppedV[j]
    sortedAt[i] = placedAt[j]
  end
  popped, poppedF, poppedV, placedAt = sortedJobs, sortedF, sortedV, sortedAt
end
local sizes = nil
if Ls and jobsPerCall == 1 and not perGroup then
  -- Per-job limits: a job spends its cost (field q), at most the smallest allowed.
  local weighted = false
  local costs = {}
  for i = 1, #popped do
    costs[i] = costOf(poppedF[i] or NO_FIELDS, Ls)
    if costs[i] > 1 then
      weighted = true
    end
  end
  if weighted then
    sizes = costs
    local granted
    plan, granted, planRetry = limiterPlan(Ls, #popped, sizes, now + leadMs, now + reach, false, perMs)
    -- What the limits do not grant goes back to the head of its ready list, in order (a job of a
    -- group to the front of its group, giving its slot back).
    for i = #popped, granted + 1, -1 do
      local g, p = groupOf(poppedF[i] or NO_FIELDS)
      if g then
        groupPush(groupPrefix, g, p, popped[i], true, readyPrefix, prioritiesKey)
        groupFree(groupPrefix, g, readyPrefix, prioritiesKey)
      else
        redis.call('LPUSH', readyPrefix .. p, popped[i])
        redis.call('ZADD', prioritiesKey, p, p)
      end
      popped[i] = nil
      poppedF[i] = nil
      poppedV[i] = nil
    end
  end
end

local got = #popped
local token = ''
if got > 0 then
  token = string.format('%d.%d.%d', redis.call('HINCRBY', countersKey, 'tk', '1'), now, got)
end
local deadline = string.format('%d', now + leaseMs) -- not tostring: %.14g costs three times more
-- The reply, its jobs written straight in (retryAfter and nextCheck are filled in below).
local reply = { 0, now, -1, -1, token, got }
local r = 6
-- The leased jobs are answered in one of two forms, two reply values for the call instead of one or
-- three per job (each reply value costs this script and the client more than its bytes).
--
-- When every job's record is compact (includes/compact.lua: the common case), partCount is -1 and
-- two strings follow: the ids joined by NUL bytes (the lease keeps the same string) and the
-- compact values joined by NUL bytes, in the same order, as they are stored. The script looks at no
-- value: a call of a string function per job (string.byte, string.find) was about a fifteenth of a
-- batch's instructions (bench/README.md). A compact value is `c NUL created-at NUL d NUL data`, so
-- the client finds 4 strings per job, `c` and `d` in their places. A value of another shape
-- (written by something else) or an id or a payload holding a NUL byte splits otherwise, and the
-- client then reads the lease's ids and the call's records again by themselves.
--
-- Otherwise partCount is the number of strings in the one string that follows: for each job in
-- order, its id, the number n of its record's field and value strings as HGETALL gave them, then
-- those n strings, all joined by NUL bytes. The client splits it and finds partCount strings; an id
-- or a record holding a NUL byte (Sluice writes none in records: payloads are JSON text, where a NUL
-- is escaped; another writer may, and a caller may choose such an id) splits into more, and the
-- client reads the lease's ids and the call's records again by themselves. Written out in the
-- loop, as the group lookup above: a helper call per job cost more than its body. A record of 4
-- strings (data and created-at: a job with every default) takes the constant '4' (a number made
-- text costs more than a lookup).
local joinedIds = nil
if not ownRecords then
  joinedIds = table.concat(popped, '\0', 1, got)
  reply[r + 1] = -1
  reply[r + 2] = joinedIds
  reply[r + 3] = table.concat(poppedV, '\0', 1, got)
  r = r + 3
else
  local records = {}
  -- string.byte and string.find read once, not per job (a global's field each time: 500
  -- instructions per job in a batch).
  local byte, find = string.byte, string.find
  local m = 0
  local parts = 0
  for i = 1, got do
    m = m + 1
    records[m] = popped[i]
    local v = poppedV[i]
    if v then
      -- A compact record's value is its two fields as this reply joins them; one that is not
      -- (written by something else) is answered as a record of one field d, which the client
      -- dead-letters. Checked only as far as the split needs: `c`, NUL, then `NUL d NUL` further
      -- on, so the value holds at least the 3 NUL bytes of its 4 strings; more NULs split it into
      -- more strings than the reply says and the client reads the call's records again by
      -- themselves, and a created-at that is no number is the client's to refuse.
      m = m + 2
      local c1, c2 = byte(v, 1, 2)
      if c1 == 99 and c2 == 0 and find(v, '\0d\0', 4, true) then
        records[m - 1] = '4'
        records[m] = v
        parts = parts + 6
      else
        records[m - 1] = '2'
        records[m] = 'd\0' .. v
        parts = parts + 4
      end
    else
      local f = poppedF[i]
      local k = #f
      m = m + 1
      records[m] = k == 4 and '4' or tostring(k)
      if k > 0 then
        m = m + 1
        records[m] = table.concat(f, '\0')
      end
      parts = parts + 2 + k
    end
  end
  reply[r + 1] = parts
  reply[r + 2] = table.concat(records, '\0')
  r = r + 2
end
if got > 0 then
  leaseOpen(activeKey, token, popped, deadline, workerId, joinedIds)
end

local retryAfter = -1
local nextCheck = -1
local slots = {}
if perGroup then
  for i = 1, got do
    local last = slots[#slots]
    if last and last[1] == placedAt[i] then
      last[2] = last[2] + 1
    else
      slots[#slots + 1] = { placedAt[i], 1 }
    end
  end
  if limitedRetry >= 0 then
    retryAfter = limitedRetry
  elseif planRetry >= 0 and got == want and redis.call('ZCARD', prioritiesKey) > 0 then
    retryAfter = planRetry -- the queue's limits granted no more than were taken
  end
  for _, L in ipairs(Ls or {}) do
    limiterSave(L)
  end
  for _, L in pairs(groupLogs) do
    limiterSave(L)
  end
elseif Ls then
  local recorded = limiterCommit(Ls, plan, math.ceil(got / jobsPerCall), sizes)
  -- Each slot's jobs: its items (jobs, or calls of jobsPerCall), the last call maybe short.
  local left = got
  for _, r in ipairs(recorded) do
    local n = math.min(left, r[2] * jobsPerCall)
    slots[#slots + 1] = { r[1], n }
    left = left - n
  end
  -- Limited only if the limit, not the queue, cut the answer short: ready jobs remain.
  if planRetry >= 0 and (got == want or sizes) and redis.call('ZCARD', prioritiesKey) > 0 then
    retryAfter = planRetry
  end
  for _, L in ipairs(Ls) do
    limiterSave(L)
  end
end
if retryAfter < 0 and capped and got < n then
  nextCheck = capCheckMs
elseif retryAfter < 0 and got < n then
  local nextDue = redis.call('ZRANGE', scheduledKey, '0', '0', 'WITHSCORES')
  local dueAt = tonumber(nextDue[2])
  local groupAt = groupNextLimited(groupPrefix)
  if groupAt and (not dueAt or groupAt < dueAt) then
    dueAt = groupAt
  end
  if dueAt then
    nextCheck = math.max(1, dueAt - now)
  end
end

reply[3] = retryAfter
reply[4] = nextCheck
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
r = r + 1 + 2 * #slots
-- What is left of n waits for the next add (not when the limits or the cap held it back).
local parked = 0
if parkId ~= '' and got < n and retryAfter < 0 and not capped then
  parked = n - got
  parkPut(activeKey, parkId, parkSeq, parked, now + parkTtlMs, leaseMs, workerId)
end
reply[r + 1] = reclaimed
reply[r + 2] = parked
return reply
