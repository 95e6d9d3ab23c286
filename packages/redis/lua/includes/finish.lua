--[[
  Terminal states. Field `s` of a job record is set only for them: c completed, x cancelled, d dead.
  Ready, scheduled and running jobs are told apart by the structure holding them.

  A finished job is held by no lease (includes/leases.lua), so no token matches it any more.

  Retention is a compact string: 'n' (keep none), 'k' (keep all), 'c<count>' (newest count jobs),
  'a<ms>' (finished less than ms ago), or 'c<count>a<ms>' (both bounds). A job's own retention
  decides only whether it is deleted at once ('n'); the queue's retention trims the finished list
  (completed and cancelled jobs, newest first), its dead retention the dead list. Callers pass them
  already resolved: the settings' `r` / `rd`, else the defaults the client gives as arguments
  (DEFAULT_RETENTION / DEFAULT_DEAD_RETENTION of @sluice/core; no default is kept here). Trimming
  pops from the old end of a list, so it costs the records it deletes, never a scan.
  Entries of the finished list carry the state in front of the id ("c17", "x18"), so trimming and
  listing never read the records.
]]
--- @include "includes/chunked.lua"
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"

-- Finished jobs of one call, written in bulk by finishFlush: ids to push on the finished list (in
-- finish order) and ids whose records to delete (retention none), in either place
-- (includes/compact.lua).
local function finishBatch()
  return { pushed = {}, deleted = {} }
end

-- Finishes a job as completed ('c') or cancelled ('x'). `fields` are extra HSET pairs (result,
-- reason). Returns true if the record is kept (and counted), false if it is deleted.
-- Finishes a job in `state`, writing the further field / value pairs given after queueRetention.
local function finishJob(batch, jobKey, id, state, nowS, jobRetention, queueRetention, ...)
  local retention = jobRetention or queueRetention
  if retention == 'n' then
    batch.deleted[#batch.deleted + 1] = id
    return false
  end
  redis.call('HSET', jobKey, 's', state, 'f', nowS, ...)
  batch.pushed[#batch.pushed + 1] = state .. id
  return true
end

local function finishFlush(batch, finishedKey, jobPrefix)
  callChunked('LPUSH', finishedKey, batch.pushed)
  if #batch.deleted > 0 then
    recordDelete(jobPrefix, batch.deleted)
  end
end

-- The bounds of a compact retention: count (nil: none) and age in ms (nil: none).
local function retentionBounds(retention)
  if retention == 'n' then
    return 0, nil
  end
  return tonumber(string.match(retention, 'c(%d+)')), tonumber(string.match(retention, 'a(%d+)'))
end

-- Pops the entries of a newest-first list beyond a retention, oldest first, at most maxWork; an
-- entry's finish time is `finishedAt(entry)` (a number, or nil). Returns the entries popped.
local function trimList(listKey, finishedAt, retention, now, maxWork)
  local count, age = retentionBounds(retention)
  local popped = {}
  if count then
    local excess = math.min(redis.call('LLEN', listKey) - count, maxWork)
    if excess > 0 then
      popped = redis.call('RPOP', listKey, excess) or {}
    end
  end
  if age then
    local cutoff = now - age
    while #popped < maxWork do
      local entry = redis.call('LINDEX', listKey, -1)
      if not entry then
        break
      end
      local f = finishedAt(entry)
      if f and f > cutoff then
        break
      end
      redis.call('RPOP', listKey)
      popped[#popped + 1] = entry
    end
  end
  return popped
end

local function deleteKeys(keys)
  for i = 1, #keys, 1000 do
    redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys)))
  end
end

-- Trims the finished list to the queue's retention, deleting at most `maxWork` records in either
-- place (includes/compact.lua: a job completed on a settle's fast path may keep a compact record),
-- and the finished index's entries of the completed ones. Returns the numbers of completed and
-- cancelled records deleted.
local function applyRetention(finishedKey, activeKey, jobPrefix, queueRetention, now, maxWork)
  local finishedAt = function(entry)
    local id = string.sub(entry, 2)
    local f = redis.call('HGET', jobPrefix .. id, 'f')
    if not f and string.byte(entry, 1) == 99 then
      f = finishedIndexOf(activeKey, id)
    end
    return tonumber(f)
  end
  local removed = { c = 0, x = 0 }
  local doomed = {}
  local nDoomed = 0
  local indexed = {}
  for _, entry in ipairs(trimList(finishedKey, finishedAt, queueRetention, now, maxWork)) do
    local state = string.byte(entry, 1)
    if state == 99 or state == 120 then -- 'c' or 'x'
      local id = string.sub(entry, 2)
      if state == 99 then
        removed.c = removed.c + 1
        indexed[removed.c] = id
      else
        removed.x = removed.x + 1
      end
      nDoomed = nDoomed + 1
      doomed[nDoomed] = id
    end
  end
  recordDelete(jobPrefix, doomed)
  callChunked('HDEL', finishedIndexKey(activeKey), indexed)
  return removed
end

-- Trims the dead list to the queue's dead retention, deleting at most `maxWork` records (only
-- records still dead: a retried job's id may linger). Returns the number of ids popped.
local function applyDeadRetention(deadKey, jobPrefix, deadRetention, now, maxWork)
  local finishedAt = function(id)
    return tonumber(redis.call('HGET', jobPrefix .. id, 'f'))
  end
  local popped = trimList(deadKey, finishedAt, deadRetention, now, maxWork)
  local doomed = {}
  for _, id in ipairs(popped) do
    if redis.call('HGET', jobPrefix .. id, 's') == 'd' then
      doomed[#doomed + 1] = jobPrefix .. id
    end
  end
  deleteKeys(doomed)
  return #popped
end

-- Moves a job to the dead-letter list (newest first) with a reason.
local function deadLetter(jobKey, deadKey, id, reason, nowS)
  redis.call('HSET', jobKey, 's', 'd', 'x', reason, 'f', nowS)
  redis.call('LPUSH', deadKey, id)
end
