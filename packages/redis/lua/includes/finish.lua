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
-- and the finished index's entries of the completed ones. Entries go whole from the old end; a run
-- (includes/finished.lua) holding more jobs than the count bound lets go loses its oldest jobs and
-- keeps the rest in one entry in its place, and the counters' `fr` moves with the runs. Returns the
-- numbers of completed and cancelled records deleted. One function, its parsing inline: every
-- helper a script defines is a closure made on each call, a few thousand instructions each, which
-- a settle of one job pays whether it trims a run or not.
-- The ids x, x + 1, ..., x + n - 1 as decimals (as a ranged run's are): a hundred's leading digits
-- formatted once and joined with each two-digit ending (below 100, each id formatted by itself), a concatenation per id rather than the two string function calls of a split (string.find,
-- string.sub), each of which costs a batch's trim hundreds of instructions per job.
local function rangedIds(x, n)
  local endings = { '00', '01', '02', '03', '04', '05', '06', '07', '08', '09', '10', '11', '12', '13', '14', '15', '16', '17', '18', '19', '20', '21', '22', '23', '24', '25', '26', '27', '28', '29', '30', '31', '32', '33', '34', '35', '36', '37', '38', '39', '40', '41', '42', '43', '44', '45', '46', '47', '48', '49', '50', '51', '52', '53', '54', '55', '56', '57', '58', '59', '60', '61', '62', '63', '64', '65', '66', '67', '68', '69', '70', '71', '72', '73', '74', '75', '76', '77', '78', '79', '80', '81', '82', '83', '84', '85', '86', '87', '88', '89', '90', '91', '92', '93', '94', '95', '96', '97', '98', '99' }
  local ids, k = {}, 0
  local v, y = x, x + n - 1
  while v <= y do
    local base = v - v % 100
    local last = math.min(y, base + 99)
    if base == 0 then
      -- A queue's first ids (one or two digits): each formatted by itself.
      for id = v, last do
        k = k + 1
        ids[k] = string.format('%d', id)
      end
    else
      local lead = string.format('%d', base / 100)
      for e = v - base + 1, last - base + 1 do
        k = k + 1
        ids[k] = lead .. endings[e]
      end
    end
    v = last + 1
  end
  return ids, k
end

local function applyRetention(finishedKey, activeKey, countersKey, jobPrefix, queueRetention, now, maxWork)
  local count, age = retentionBounds(queueRetention)
  local ids, nIds, indexed, nIndexed = {}, 0, {}, 0
  -- Members of the ranges of ranged runs that go, and the ones their cut leaves.
  local unranged, ranged = {}, {}
  local nc, nx, runs = 0, 0, 0
  -- The count bound first, then the age bound, each taking jobs from the old end.
  for bound = 1, 2 do
    local want, entries, popped = 0, nil, false
    if bound == 1 and count then
      local held = tonumber(redis.call('HGET', countersKey, 'fr')) or 0
      want = math.min(redis.call('LLEN', finishedKey) + held - count, maxWork)
      if want > 0 and held == 0 then
        -- No run in the list: every entry is one job's, popped at once.
        entries = redis.call('RPOP', finishedKey, want) or {}
        popped = true
      end
    elseif bound == 2 and age then
      want = maxWork - nIds
    end
    local cutoff = age and now - age
    -- Entries are read from the old end: a few first (a run may hold all that is wanted), then up
    -- to 100 at a time, never more than the jobs wanted (each entry holds one or more).
    local page = 4
    while want > 0 do
      if not popped then
        entries = redis.call('LRANGE', finishedKey, -math.min(want, page), -1)
        page = 100
      end
      local nEntries = #entries
      local taken = 0
      local i = nEntries
      while i >= 1 and want > 0 do
        local entry = entries[i]
        local n, f, at, g
        local kind = string.byte(entry, 1)
        if kind == 67 then -- 'C': a run
          n, f, at = string.match(entry, '^C(%d+)|(%d+)|()')
          n = tonumber(n)
        elseif kind == 82 then -- 'R': a ranged run
          n, f, g, at = string.match(entry, '^R(%d+)|(%d+)|(%d+)|()')
          n = tonumber(n)
        end
        if bound == 2 then
          local t = f
          if not n then
            local id = string.sub(entry, 2)
            t = redis.call('HGET', jobPrefix .. id, 'f')
            if not t and string.byte(entry, 1) == 99 then
              t = finishedIndexOf(activeKey, id)
            end
          end
          t = tonumber(t)
          if t and t > cutoff then
            want = 0
            break
          end
        end
        taken = taken + 1
        if n then
          local runIds, nRun, p = nil, 0, at
          local x = g and tonumber(string.sub(entry, at, (string.find(entry, '\0', at, true) or 0) - 1))
          if x and n >= 2 then
            -- A ranged run's ids are the decimals x, x + 1, ... of one length (checked by the settle
            -- that wrote it): made from the numbers, a hundred at a time, rather than split.
            runIds, nRun = rangedIds(x, n)
          else
            runIds = {}
            -- A global's field read once, not per id.
            local sfind, ssub = string.find, string.sub
            while true do
              local q = sfind(entry, '\0', p, true)
              nRun = nRun + 1
              runIds[nRun] = ssub(entry, p, q and q - 1)
              if not q then
                break
              end
              p = q + 1
            end
          end
          -- Popped at once (no run was counted): all of it goes.
          local upTo = popped and nRun or math.min(nRun, want)
          if g then
            unranged[#unranged + 1] = runIds[1] .. '|' .. n .. '|' .. f .. '|' .. g -- finishedRangeMember
            for j = 1, upTo do
              nIds = nIds + 1
              ids[nIds] = runIds[j]
            end
          else
            for j = 1, upTo do
              nIds = nIds + 1
              ids[nIds] = runIds[j]
              nIndexed = nIndexed + 1
              indexed[nIndexed] = runIds[j]
            end
          end
          nc = nc + upTo
          runs = runs - (n - 1)
          want = want - upTo
          if upTo < nRun then
            -- Its newer jobs stay, in one entry where it was (the old end).
            redis.call('RPOP', finishedKey, taken)
            taken = 0
            local left = nRun - upTo
            if left == 1 then
              redis.call('RPUSH', finishedKey, 'c' .. runIds[nRun])
              if g then
                -- A single job's entry is found in the finished index.
                redis.call('HSET', finishedIndexKey(activeKey), runIds[nRun], f .. '|' .. g)
              end
            elseif g then
              redis.call('RPUSH', finishedKey, 'R' .. left .. '|' .. f .. '|' .. g .. '|' .. table.concat(runIds, '\0', upTo + 1, nRun))
              ranged[#ranged + 1] = runIds[upTo + 1]
              ranged[#ranged + 1] = runIds[upTo + 1] .. '|' .. left .. '|' .. f .. '|' .. g
              runs = runs + left - 1
            else
              redis.call('RPUSH', finishedKey, 'C' .. left .. '|' .. f .. '|' .. table.concat(runIds, '\0', upTo + 1, nRun))
              runs = runs + left - 1
            end
            want = 0
          end
        else
          local state = string.byte(entry, 1)
          if state == 99 or state == 120 then -- 'c' or 'x'
            local id = string.sub(entry, 2)
            nIds = nIds + 1
            ids[nIds] = id
            if state == 99 then
              nc = nc + 1
              nIndexed = nIndexed + 1
              indexed[nIndexed] = id
            else
              nx = nx + 1
            end
          end
          want = want - 1
        end
        i = i - 1
      end
      if popped or taken < nEntries or nEntries == 0 then
        if not popped and taken > 0 then
          redis.call('RPOP', finishedKey, taken)
        end
        break
      end
      redis.call('RPOP', finishedKey, taken)
    end
  end
  recordDelete(jobPrefix, ids)
  callChunked('HDEL', finishedIndexKey(activeKey), indexed)
  -- The ranges of ranged runs (finishedRangesKey of includes/leases.lua), written out: a helper is
  -- a closure made on every call.
  if #unranged > 0 then
    callChunked('ZREM', activeKey .. ':r', unranged)
    callChunked('ZADD', activeKey .. ':r', ranged)
  end
  if runs ~= 0 then
    redis.call('HINCRBY', countersKey, 'fr', runs)
  end
  return { c = nc, x = nx }
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
