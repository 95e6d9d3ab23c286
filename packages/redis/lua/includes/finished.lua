--[[
  The finished list: completed and cancelled jobs, newest first. An entry is one of

    c<id>, x<id>            one job, completed or cancelled (the state in front of the id)
    C<n>|<f>|<ids>          n >= 2 jobs completed together by one settle's `C` entry (settle-8.lua)
                            at store time f, their ids joined by NUL bytes in the order they
                            finished (oldest first, so the newest of them is the last)
    R<n>|<f>|<g>|<ids>      a ranged run: the same, of a lease started at g, whose ids are n
                            consecutive numbers in order, written as decimals (no sign, no leading
                            zero): the first id is a number x and the last x + n - 1

  The jobs of a run are completed on a settle's fast path: their finish time and lease start are
  in the finished index (includes/leases.lua), one field per job; those of a ranged run are not:
  one member of <active>:r (finishedRangesKey) holds them for the whole run, found by the id's
  number. Whatever drops or splits a ranged run moves its member with it; a removal from the middle
  of one makes the rest a `C` run with index fields of their own.

  A run is written as the settle received its ids, so a batch's completions cost one list element
  and no Lua work per job (a list element per job, pushed and later popped, was about a tenth of a
  batch's instructions in Redis: bench/README.md). The jobs a run holds beyond the first are
  counted in the counters hash, field `fr`, so the list holds LLEN + fr jobs: whatever writes, splits
  or drops a run moves `fr` with it (finishedAdjustRuns here; the settle and the trim of
  includes/finish.lua write theirs inline, as they do their parsing). Ids of a run hold no NUL byte (the client
  sends such an id as a settlement of its own).
]]

--- @include "includes/leases.lua"

-- The jobs of run entry `entry` (n, finish time as a string, the joined ids, and for a ranged run
-- its lease start), or nil when the entry is a single job's.
local function finishedRun(entry)
  local kind = string.byte(entry, 1)
  if kind == 67 then -- 'C'
    local n, f, at = string.match(entry, '^C(%d+)|(%d+)|()')
    if n then
      return tonumber(n), f, string.sub(entry, at)
    end
  elseif kind == 82 then -- 'R'
    local n, f, g, at = string.match(entry, '^R(%d+)|(%d+)|(%d+)|()')
    if n then
      return tonumber(n), f, string.sub(entry, at), g
    end
  end
  return nil
end

-- The ids of a run's joined ids, in the order they finished.
local function finishedRunIds(joined)
  local ids, n, p = {}, 0, 1
  while true do
    local q = string.find(joined, '\0', p, true)
    n = n + 1
    if not q then
      ids[n] = string.sub(joined, p)
      return ids
    end
    ids[n] = string.sub(joined, p, q - 1)
    p = q + 1
  end
end

-- The entry of completed jobs `ids[from..to]` (in the order they finished) at finish time `f`: a
-- run, or a single job's entry for one.
local function finishedRunEntry(ids, from, to, f)
  if to == from then
    return 'c' .. ids[from]
  end
  return 'C' .. (to - from + 1) .. '|' .. f .. '|' .. table.concat(ids, '\0', from, to)
end

-- Moves the count of jobs the runs hold beyond their first by `delta`.
local function finishedAdjustRuns(countersKey, delta)
  if delta ~= 0 then
    redis.call('HINCRBY', countersKey, 'fr', delta)
  end
end

-- Up to `limit` jobs of the finished list as { id, state } pairs in list order (newest first; a
-- run's newest job first), after the first `skip` of them. `want` ('c' or 'x'; nil: both) counts
-- and answers jobs of that state only. Walks the list from its head, a hundred entries at a time.
local function finishedJobs(finishedKey, want, skip, limit)
  local out, nOut = {}, 0
  local start = 0
  while nOut < limit do
    local entries = redis.call('LRANGE', finishedKey, start, start + 99)
    for _, entry in ipairs(entries) do
      local n, _, joined = finishedRun(entry)
      if n then
        if want ~= 'x' then
          if skip >= n then
            skip = skip - n
          else
            local ids = finishedRunIds(joined)
            for i = math.min(n, #ids) - skip, 1, -1 do
              if nOut >= limit then
                break
              end
              nOut = nOut + 1
              out[nOut] = { ids[i], 'c' }
            end
            skip = 0
          end
        end
      else
        local state = string.sub(entry, 1, 1)
        if want == nil or state == want then
          if skip > 0 then
            skip = skip - 1
          else
            nOut = nOut + 1
            out[nOut] = { string.sub(entry, 2), state }
          end
        end
      end
      if nOut >= limit then
        return out
      end
    end
    if #entries < 100 then
      return out
    end
    start = start + 100
  end
  return out
end

-- Takes completed job `id` out of the run holding it (the run left with one job becomes that job's
-- entry; a ranged run, a `C` run or single job in the finished index). Walks the list from its
-- head; returns whether a run held it.
local function finishedRemoveFromRun(finishedKey, countersKey, activeKey, id)
  local needle = '\0' .. id .. '\0'
  local start = 0
  while true do
    local entries = redis.call('LRANGE', finishedKey, start, start + 99)
    for i, entry in ipairs(entries) do
      local n, f, joined, g = finishedRun(entry)
      if n and string.find('\0' .. joined .. '\0', needle, 1, true) then
        local ids, kept = finishedRunIds(joined), {}
        for _, other in ipairs(ids) do
          if other ~= id then
            kept[#kept + 1] = other
          end
        end
        if g then
          -- A ranged run's range goes: the rest are indexed one by one.
          redis.call('ZREM', finishedRangesKey(activeKey), finishedRangeMember(ids[1], n, f, g))
          local fields = {}
          for _, other in ipairs(kept) do
            fields[#fields + 1] = other
            fields[#fields + 1] = f .. '|' .. g
          end
          callChunked('HSET', finishedIndexKey(activeKey), fields)
        end
        -- A run holds two jobs or more, so one is left at least.
        redis.call('LSET', finishedKey, start + i - 1, finishedRunEntry(kept, 1, #kept, f))
        finishedAdjustRuns(countersKey, (#kept - 1) - (n - 1))
        return true
      end
    end
    if #entries < 100 then
      return false
    end
    start = start + 100
  end
end
