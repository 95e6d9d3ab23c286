--[[
  Ready jobs: one list per priority (`<readyPrefix><priority>`, FIFO: RPUSH to enqueue, LPOP to
  reserve) and a zset of the priorities that currently have ready jobs (member = score = priority),
  so the lowest priority is always `ZRANGE priorities 0 0`.

  Lists keep a queued job down to a few bytes and make enqueue and reserve O(1) per job; removing one
  job from the middle (cancel, remove) is an O(N) LREM, which only administrative calls do.
]]
--- @include "includes/chunked.lua"

-- A batch of ids to append, grouped by priority, keeping the order in which they were added.
local function readyBatch()
  return { order = {}, lists = {} }
end

local function readyAdd(batch, priority, id)
  local p = priority or '0'
  local list = batch.lists[p]
  if not list then
    list = {}
    batch.lists[p] = list
    batch.order[#batch.order + 1] = p
  end
  list[#list + 1] = id
end

local function readyFlush(batch, readyPrefix, prioritiesKey)
  for _, p in ipairs(batch.order) do
    callChunked('RPUSH', readyPrefix .. p, batch.lists[p])
    redis.call('ZADD', prioritiesKey, p, p)
  end
end

local function readyPush(readyPrefix, prioritiesKey, priority, id)
  local p = priority or '0'
  redis.call('RPUSH', readyPrefix .. p, id)
  redis.call('ZADD', prioritiesKey, p, p)
end

-- Removes one ready job (administrative paths only: O(N) in its priority list).
local function readyRemove(readyPrefix, prioritiesKey, priority, id)
  local p = priority or '0'
  local key = readyPrefix .. p
  local removed = redis.call('LREM', key, 1, id)
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', prioritiesKey, p)
  end
  return removed
end

-- Pops up to `count` ids from the lowest priority that has ready jobs (one priority per call; the
-- caller loops). Returns an empty table when nothing is ready.
local function readyPop(prioritiesKey, readyPrefix, count)
  while true do
    local top = redis.call('ZRANGE', prioritiesKey, '0', '0')
    if #top == 0 then
      return {}
    end
    local key = readyPrefix .. top[1]
    local ids = redis.call('LPOP', key, count)
    if redis.call('EXISTS', key) == 0 then
      redis.call('ZREM', prioritiesKey, top[1])
    end
    if ids and #ids > 0 then
      return ids
    end
  end
end

-- Number of ready jobs; with `atLeast`, stops counting once it reaches that many (each priority in
-- the zset has a job, so at most `atLeast` lists are looked at).
local function readyCount(prioritiesKey, readyPrefix, atLeast)
  local prios = redis.call('ZRANGE', prioritiesKey, 0, atLeast and math.ceil(atLeast) - 1 or -1)
  local total = 0
  for _, p in ipairs(prios) do
    total = total + redis.call('LLEN', readyPrefix .. p)
    if atLeast and total >= atLeast then
      return total
    end
  end
  return total
end
