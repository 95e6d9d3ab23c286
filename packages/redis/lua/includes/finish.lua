--[[
  Terminal states. Field `s` of a job record is set only for them: c completed, x cancelled, d dead.
  Ready, scheduled and running jobs are told apart by the structure holding them.

  A finished job keeps its last lease token (field k): the state field makes every token check fail,
  and not deleting it saves a write per job.

  Retention is a compact string: 'n' (keep none), 'c<count>' (newest count finished jobs), 'a<ms>'
  (finished less than ms ago). A job's own retention decides only whether it is deleted at once
  ('n'); the queue's retention trims the finished list (completed and cancelled jobs, newest first).
  Callers pass the queue's retention already resolved: the settings' `r`, else the default retention
  the client gives as an argument (DEFAULT_RETENTION of @sluice/core; no default is kept here).
  Entries of the finished list carry the state in front of the id ("c17", "x18"), so trimming and
  listing never read the records.
]]
--- @include "includes/chunked.lua"

-- Finished jobs of one call, written in bulk by finishFlush: ids to push on the finished list (in
-- finish order) and records to delete (retention none).
local function finishBatch()
  return { pushed = {}, deleted = {} }
end

-- Finishes a job as completed ('c') or cancelled ('x'). `fields` are extra HSET pairs (result,
-- reason). Returns true if the record is kept (and counted), false if it is deleted.
local function finishJob(batch, jobKey, id, state, nowS, jobRetention, queueRetention, fields)
  local retention = jobRetention or queueRetention
  if retention == 'n' then
    batch.deleted[#batch.deleted + 1] = jobKey
    return false
  end
  redis.call('HSET', jobKey, 's', state, 'f', nowS, unpack(fields))
  batch.pushed[#batch.pushed + 1] = state .. id
  return true
end

local function finishFlush(batch, finishedKey)
  callChunked('LPUSH', finishedKey, batch.pushed)
  if #batch.deleted > 0 then
    local keys = batch.deleted
    for i = 1, #keys, 1000 do
      redis.call('DEL', unpack(keys, i, math.min(i + 999, #keys)))
    end
  end
end

-- Trims the finished list to the queue's retention, deleting at most `maxWork` records. Returns the
-- numbers of completed and cancelled records deleted.
local function applyRetention(finishedKey, jobPrefix, queueRetention, now, maxWork)
  local retention = queueRetention
  local kind = string.sub(retention, 1, 1)
  local value = tonumber(string.sub(retention, 2)) or 0
  local removed = { c = 0, x = 0 }
  local doomed = {}
  local drop = function(entry)
    local state = string.sub(entry, 1, 1)
    if state == 'c' or state == 'x' then
      removed[state] = removed[state] + 1
      doomed[#doomed + 1] = jobPrefix .. string.sub(entry, 2)
    end
  end
  if kind == 'c' then
    local excess = math.min(redis.call('LLEN', finishedKey) - value, maxWork)
    if excess > 0 then
      for _, entry in ipairs(redis.call('RPOP', finishedKey, excess) or {}) do
        drop(entry)
      end
    end
  elseif kind == 'a' then
    local cutoff = now - value
    while maxWork > 0 do
      local entry = redis.call('LINDEX', finishedKey, -1)
      if not entry then
        break
      end
      local f = tonumber(redis.call('HGET', jobPrefix .. string.sub(entry, 2), 'f'))
      if f and f > cutoff then
        break
      end
      redis.call('RPOP', finishedKey)
      drop(entry)
      maxWork = maxWork - 1
    end
  end
  for i = 1, #doomed, 1000 do
    redis.call('DEL', unpack(doomed, i, math.min(i + 999, #doomed)))
  end
  return removed
end

-- Moves a job to the dead-letter list (newest first) with a reason.
local function deadLetter(jobKey, deadKey, id, reason, nowS)
  redis.call('HSET', jobKey, 's', 'd', 'x', reason, 'f', nowS)
  redis.call('LPUSH', deadKey, id)
end
