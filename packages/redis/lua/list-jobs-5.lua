--[[
  list-jobs: one page of a queue's jobs in one state, in the order MemoryStore lists them: ready by
  priority then FIFO (the ready lists, which hold one turn per group; then the jobs waiting in their
  groups, groups by name, each in turn order), scheduled by run-at, running by lease start, completed / cancelled / dead
  newest first. Due scheduled jobs are promoted first, as reserve would.

  With a filter (a job name, or a time range on the state's time: run-at for ready and scheduled
  jobs, lease start for running ones, finish time for the others), offset is a position in that
  order, and the call looks at no more than maxScan jobs from there: it answers the matches it found
  after skipping `skip` of them, and where the next call should go on. Completed, cancelled and dead
  jobs are walked newest first, so the walk stops at the first one finished before `from`; scheduled
  jobs are read by run-at range straight from their zset.

  KEYS:
    1  priorities  zset  priorities that have ready jobs
    2  scheduled   zset  scheduled job ids by run-at
    3  active      zset  lease tokens by deadline (includes/leases.lua)
    4  dead        list  dead-letter ids, newest first
    5  finished    list  completed and cancelled jobs, newest first (includes/finished.lua)

  ARGV:
    1  jobPrefix    prefix of job record keys
    2  readyPrefix  prefix of the per-priority ready lists
    3  state        ready | scheduled | running | completed | dead | cancelled
    4  offset
    5  limit
    6  maxPromote   most scheduled jobs promoted by this call
    7  queueName    the queue's name (the name of jobs stored without one)
    8  name         only jobs of this name ('' = any)
    9  from         only jobs whose time is ≥ this (store ms; '' = no bound)
    10 to           only jobs whose time is ≤ this (store ms; '' = no bound)
    11 maxScan      with a filter: most jobs looked at by this call
    12 skip         with a filter: matches to skip before the first one answered
    13 groupPrefix  prefix of the group keys (includes/groups.lua)

  Returns:
    { count, count × record, next, skip } where a record is as get-job returns it; next is the
    position to go on from (-1: nothing more) and skip the matches still to skip (only meaningful
    with a filter: without one, next is -1).

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"
--- @include "includes/promote.lua"
--- @include "includes/leases.lua"
--- @include "includes/records.lua"
--- @include "includes/finished.lua"

local prioritiesKey, scheduledKey, activeKey, deadKey, finishedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local jobPrefix, readyPrefix, state = ARGV[1], ARGV[2], ARGV[3]
local offset, limit, maxPromote = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local queueName, name, from, to = ARGV[7], ARGV[8], tonumber(ARGV[9]), tonumber(ARGV[10])
local maxScan, skip = tonumber(ARGV[11]), tonumber(ARGV[12])
local groupPrefix = ARGV[13]
if #ARGV ~= 13 or not (offset and limit and maxPromote and maxScan and skip) then
  return -2
end
if (ARGV[9] ~= '' and not from) or (ARGV[10] ~= '' and not to) then
  return -2
end
local filtered = name ~= '' or from ~= nil or to ~= nil

local now = storeNow()
promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, groupPrefix, now, maxPromote)

local reply = { 0 }
local add = function(id, code)
  appendRecord(reply, jobPrefix, id, code, activeKey)
  reply[1] = reply[1] + 1
end
if limit <= 0 then
  reply[#reply + 1] = -1
  reply[#reply + 1] = skip
  return reply
end

if filtered then
  -- Candidates from position `offset`, at most maxScan: { id, code, lease start } in state order.
  local candidates = {}
  local exhausted = false
  if state == 'ready' then
    local pos = offset
    for _, p in ipairs(redis.call('ZRANGE', prioritiesKey, 0, -1)) do
      local key = readyPrefix .. p
      local len = redis.call('LLEN', key)
      if pos >= len then
        pos = pos - len
      else
        for _, id in ipairs(redis.call('LRANGE', key, pos, pos + maxScan - #candidates - 1)) do
          candidates[#candidates + 1] = { id, 'w' }
        end
        pos = 0
        if #candidates >= maxScan then
          break
        end
      end
    end
    if #candidates < maxScan then
      for _, id in ipairs(groupWaitingRange(groupPrefix, pos, maxScan - #candidates)) do
        candidates[#candidates + 1] = { id, 'w' }
      end
    end
  elseif state == 'scheduled' then
    local ids = redis.call('ZRANGEBYSCORE', scheduledKey, from or '-inf', to or '+inf', 'LIMIT', offset, maxScan)
    for _, id in ipairs(ids) do
      candidates[#candidates + 1] = { id, 's' }
    end
  elseif state == 'running' then
    local rows = leaseRunning(activeKey)
    for i = offset + 1, math.min(#rows, offset + maxScan) do
      candidates[#candidates + 1] = { rows[i].id, 'a', rows[i].started }
    end
  elseif state == 'dead' then
    for _, id in ipairs(redis.call('LRANGE', deadKey, offset, offset + maxScan - 1)) do
      candidates[#candidates + 1] = { id, 'd' }
    end
  elseif state == 'completed' or state == 'cancelled' then
    -- Positions count jobs, each of a run's too (includes/finished.lua), of both states.
    candidates = finishedJobs(finishedKey, nil, offset, maxScan)
  else
    return -2
  end
  if #candidates < maxScan then
    exhausted = true
  end
  local want = state == 'completed' and 'c' or state == 'cancelled' and 'x' or state == 'dead' and 'd' or nil
  local newestFirst = want ~= nil
  local scanned = 0
  for _, c in ipairs(candidates) do
    scanned = scanned + 1
    local f = redis.call('HMGET', jobPrefix .. c[1], 'c', 'n', 'r', 'g', 'f', 's')
    if not f[1] then
      -- A compact record (includes/compact.lua): created-at and data only.
      local v = compactGet(jobPrefix, c[1])
      f[1] = v and compactParse(v)
    end
    if want == 'c' and f[1] and not f[6] then
      -- Completed on a settle's fast path: its state and finish time are in the finished index.
      local finishedAt = finishedIndexOf(activeKey, c[1])
      if finishedAt then
        f[5], f[6] = finishedAt, 'c'
      end
    end
    -- A record that is gone, or an id left behind in a list by a job that moved on, is skipped.
    local live = f[1] and (want == nil or (c[2] == want and f[6] == want))
    if live then
      local at
      if want then
        at = tonumber(f[5])
      elseif state == 'running' then
        at = c[3]
      else
        at = tonumber(f[3]) or tonumber(f[1])
      end
      if newestFirst and from and at and at < from then
        exhausted = true
        break
      end
      local match = (name == '' or (f[2] or queueName) == name)
        and (not from or (at and at >= from))
        and (not to or (at and at <= to))
      if match then
        if skip > 0 then
          skip = skip - 1
        else
          appendRecord(reply, jobPrefix, c[1], c[2], activeKey)
          reply[1] = reply[1] + 1
          if reply[1] >= limit then
            break
          end
        end
      end
    end
  end
  local next = offset + scanned
  if exhausted and (reply[1] < limit or scanned >= #candidates) then
    next = -1
  end
  reply[#reply + 1] = next
  reply[#reply + 1] = skip
  return reply
end

if state == 'ready' then
  local skip = offset
  for _, p in ipairs(redis.call('ZRANGE', prioritiesKey, 0, -1)) do
    local key = readyPrefix .. p
    local len = redis.call('LLEN', key)
    if skip >= len then
      skip = skip - len
    else
      local need = limit - reply[1]
      for _, id in ipairs(redis.call('LRANGE', key, skip, skip + need - 1)) do
        add(id, 'w')
      end
      skip = 0
      if reply[1] >= limit then
        break
      end
    end
  end
  if reply[1] < limit then
    for _, id in ipairs(groupWaitingRange(groupPrefix, skip, limit - reply[1])) do
      add(id, 'w')
    end
  end
elseif state == 'scheduled' then
  for _, id in ipairs(redis.call('ZRANGE', scheduledKey, offset, offset + limit - 1)) do
    add(id, 's')
  end
elseif state == 'running' then
  local rows = leaseRunning(activeKey)
  for i = offset + 1, math.min(#rows, offset + limit) do
    add(rows[i].id, 'a')
  end
elseif state == 'dead' then
  for _, id in ipairs(redis.call('LRANGE', deadKey, offset, offset + limit - 1)) do
    add(id, 'd')
  end
elseif state == 'completed' or state == 'cancelled' then
  local want = state == 'completed' and 'c' or 'x'
  for _, c in ipairs(finishedJobs(finishedKey, want, offset, limit)) do
    add(c[1], want)
  end
else
  return -2
end
reply[#reply + 1] = -1
reply[#reply + 1] = skip
return reply
