--[[
  Groups (job field G): fair turns and per-group concurrency, in the queue's hash slot.

  Every group with ready jobs has at most one "turn" out: its next job, released into the queue's
  ordinary ready lists (includes/ready.lua) at the back of its priority. The ready lists are thus the
  ring of groups that have ready jobs and may run one more: a reserve pops turns from the front
  (O(1) a pick), and a group whose turn is taken releases its next job at the back, so a group with
  a million ready jobs delays another group's job by at most one round. A group whose concurrency is
  full when its turn is taken puts the job back at its front and leaves the ring until one of its
  slots frees. A group that holds nothing has no keys at all: idle groups cost no memory and no work.

  Keys (all `<groupPrefix>…`, in the queue's hash slot; `<g>` is the group name):
    <gp>s:<g>  hash  r slots held (jobs leased, and retries waiting out their backoff), t the id of
                     the job whose turn is out (absent: none) and tp its priority, s / h tail /
                     head sequences
    <gp>w:<g>  zset  the group's waiting jobs, not yet released: score priority × 2^32 + 2^31 + seq
                     (lowest first: priority, then sequence; jobs put back at the front get
                     negative sequences, so they go before every job of their priority)
    <gp>i      zset  every group holding anything (a slot, a turn, a waiting job) or paused
                     (member = name, score 0: listed by name)
    <gp>n      string  the number of waiting jobs over all groups (ready jobs not in the ready lists)
    <gp>p      set   paused groups: no turn is released while a group is paused (it stays in the
                     index while paused, even holding nothing)
    <gp>l:<g>  hash  the group's rate-limit log (includes/limiter.lua; only under a group rate limit,
                     expires like any log; store-wide numbers set with set-limit stay)
    <gp>d      zset  groups held back by their rate limit, by the store time their log has room again
                     (their state has field l): no turn is released until a reserve promotes them
    <gp>wt     hash  weights set for groups (group → w ≥ 2): such a group takes w turns in a row
                     each round (state field c counts them); absent: 1. Kept until cleared.

  Slots: a job takes one when a reserve leases it and gives it back when it is settled, recovered,
  cancelled or removed. A job retried after a failure (settle, delay > 0) keeps its slot while it
  waits out its backoff (job field H = 1), and goes back to the front of its group when due, so
  with concurrency 1 a group's jobs start in the order they were added, retries included. A job
  whose lease expired is recovered to the front of its group too. Snoozed jobs give their slot back
  and queue at the back. Sequences restart when a group's state goes (it holds nothing); a group
  that never empties has room for 2^31 jobs put at its back (and as many at its front) before its
  scores would reach the next priority.

  Rate limits per group: a reserve that finds a group's log full (no room by the latest slot it may
  grant) puts the job back at the front of its group, gives its slot back and holds the group back
  (field l, zset <gp>d) until its log has room; a reserve promotes due groups (groupPromoteLimited)
  before it pops, so a full group costs nothing until then, whatever its backlog.
]]
--- @include "includes/ready.lua"

local GROUP_PRIORITY = 4294967296 -- 2^32: scores are priority × 2^32 + 2^31 + sequence
local GROUP_ORIGIN = 2147483648 -- 2^31

-- Deletes group g's state when it holds nothing: no slot, no turn out, no waiting job.
local function groupTidy(gp, g)
  local sk = gp .. 's:' .. g
  local s = redis.call('HMGET', sk, 'r', 't')
  if (tonumber(s[1]) or 0) <= 0 and not s[2] and redis.call('EXISTS', gp .. 'w:' .. g) == 0 then
    redis.call('DEL', sk)
    if redis.call('SISMEMBER', gp .. 'p', g) == 0 then
      redis.call('ZREM', gp .. 'i', g)
    end
  end
end

-- Gives group g a turn if it has none out and is not paused: its first waiting job goes to the back
-- of the ready list of its priority (to the front with `front`: a weighted group's next turn in a
-- row). Returns the released id, or nil.
local function groupRelease(gp, g, readyPrefix, prioritiesKey, front)
  local sk = gp .. 's:' .. g
  local held = redis.call('HMGET', sk, 't', 'l')
  if held[1] or held[2] or redis.call('SISMEMBER', gp .. 'p', g) == 1 then
    return nil
  end
  local top = redis.call('ZPOPMIN', gp .. 'w:' .. g)
  if #top == 0 then
    groupTidy(gp, g)
    return nil
  end
  local id = top[1]
  local p = tostring(math.floor(tonumber(top[2]) / GROUP_PRIORITY))
  redis.call('DECR', gp .. 'n')
  redis.call('HSET', sk, 't', id, 'tp', p)
  if front then
    redis.call('LPUSH', readyPrefix .. p, id)
    redis.call('ZADD', prioritiesKey, p, p)
  else
    readyPush(readyPrefix, prioritiesKey, p, id)
  end
  return id
end

-- Whether group g's next turn goes to the front of the ready order: with a weight w ≥ 2 (hash
-- <gp>wt), it takes w turns in a row, then its next one goes to the back (the round goes on).
local function groupStreak(gp, g)
  local w = tonumber(redis.call('HGET', gp .. 'wt', g))
  if not w or w < 2 then
    return false
  end
  local sk = gp .. 's:' .. g
  if redis.call('HINCRBY', sk, 'c', 1) < w then
    return true
  end
  redis.call('HSET', sk, 'c', 0)
  return false
end

-- Takes group g's turn back, if one is out: its job leaves the ready lists (searched from the back,
-- where turns are released) for the front of its group.
local function groupRetract(gp, g, readyPrefix, prioritiesKey)
  local sk = gp .. 's:' .. g
  local t = redis.call('HMGET', sk, 't', 'tp')
  if not t[1] then
    return
  end
  local key = readyPrefix .. t[2]
  redis.call('LREM', key, -1, t[1])
  if redis.call('EXISTS', key) == 0 then
    redis.call('ZREM', prioritiesKey, t[2])
  end
  redis.call('HDEL', sk, 't', 'tp')
  local seq = -redis.call('HINCRBY', sk, 'h', 1)
  redis.call('ZADD', gp .. 'w:' .. g, tonumber(t[2]) * GROUP_PRIORITY + GROUP_ORIGIN + seq, t[1])
  redis.call('INCR', gp .. 'n')
end

-- A ready job of group g waits in its group: at the back, or with `front` before every job of its
-- priority (a turn already out is taken back first, so the job goes before it too). The group gets
-- a turn if it has none out.
local function groupPush(gp, g, priority, id, front, readyPrefix, prioritiesKey)
  local sk = gp .. 's:' .. g
  local seq
  if front then
    groupRetract(gp, g, readyPrefix, prioritiesKey)
    seq = -redis.call('HINCRBY', sk, 'h', 1)
  else
    seq = redis.call('HINCRBY', sk, 's', 1)
  end
  local p = tonumber(priority) or 0
  redis.call('ZADD', gp .. 'w:' .. g, p * GROUP_PRIORITY + GROUP_ORIGIN + seq, id)
  redis.call('ZADD', gp .. 'i', 'NX', 0, g)
  redis.call('INCR', gp .. 'n')
  groupRelease(gp, g, readyPrefix, prioritiesKey)
end

-- A reserve popped `id`, group g's turn. With room (fewer than `concurrency` slots held; -1: no
-- cap) the job takes a slot, the group's next job gets a turn at the back (if the group still has
-- room; at the front while a weighted group's streak lasts, when `weighted`: the queue has weights)
-- and the answer is true. A full group puts the job back at its front, has no turn out until a
-- slot frees, and the answer is false.
local function groupTake(gp, g, id, priority, concurrency, readyPrefix, prioritiesKey, weighted)
  local sk = gp .. 's:' .. g
  if redis.call('HGET', sk, 't') == id then
    redis.call('HDEL', sk, 't', 'tp')
  end
  local held = tonumber(redis.call('HGET', sk, 'r')) or 0
  if concurrency >= 0 and held >= concurrency then
    local p = tonumber(priority) or 0
    local seq = -redis.call('HINCRBY', sk, 'h', 1)
    redis.call('ZADD', gp .. 'w:' .. g, p * GROUP_PRIORITY + GROUP_ORIGIN + seq, id)
    redis.call('INCR', gp .. 'n')
    return false
  end
  redis.call('HINCRBY', sk, 'r', 1)
  if concurrency < 0 or held + 1 < concurrency then
    groupRelease(gp, g, readyPrefix, prioritiesKey, weighted and groupStreak(gp, g))
  end
  return true
end

-- One of group g's slots frees; the group gets a turn if it has waiting jobs and none out.
local function groupFree(gp, g, readyPrefix, prioritiesKey)
  local sk = gp .. 's:' .. g
  if redis.call('HINCRBY', sk, 'r', -1) < 0 then
    redis.call('HSET', sk, 'r', 0)
  end
  groupRelease(gp, g, readyPrefix, prioritiesKey)
  groupTidy(gp, g)
end

-- Group g's rate limit has no room for `id` (its turn, just taken with groupTake) before store time
-- `untilAt`: the job goes back to the front of its group (before a turn the take released), its slot
-- is given back, and the group gets no turn until a reserve promotes it at `untilAt`.
local function groupHoldBack(gp, g, id, priority, untilAt, readyPrefix, prioritiesKey)
  local sk = gp .. 's:' .. g
  redis.call('HSET', sk, 'l', untilAt)
  groupPush(gp, g, priority, id, true, readyPrefix, prioritiesKey)
  if redis.call('HINCRBY', sk, 'r', -1) < 0 then
    redis.call('HSET', sk, 'r', 0)
  end
  redis.call('ZADD', gp .. 'd', untilAt, g)
end

-- Groups held back by their rate limit whose time has come (at most `max`) get a turn again.
-- Returns how many were promoted.
-- `now` and `max` may be given as strings (see promoteDue).
local function groupPromoteLimited(gp, now, max, readyPrefix, prioritiesKey)
  local key = gp .. 'd'
  local due = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', '0', max)
  for _, g in ipairs(due) do
    redis.call('ZREM', key, g)
    if redis.call('HDEL', gp .. 's:' .. g, 'l') == 1 then
      groupRelease(gp, g, readyPrefix, prioritiesKey)
    end
  end
  return #due
end

-- The store time the first group held back by its rate limit is due, or nil.
local function groupNextLimited(gp)
  local first = redis.call('ZRANGE', gp .. 'd', '0', '0', 'WITHSCORES')
  return tonumber(first[2])
end

-- Removes ready job `id` of group g (cancel, remove): its turn (the group then gets its next one)
-- or a waiting job. Returns 1 if it was found, else 0.
local function groupRemove(gp, g, id, priority, readyPrefix, prioritiesKey)
  local sk = gp .. 's:' .. g
  if redis.call('HGET', sk, 't') == id then
    readyRemove(readyPrefix, prioritiesKey, priority, id)
    redis.call('HDEL', sk, 't', 'tp')
    groupRelease(gp, g, readyPrefix, prioritiesKey)
    groupTidy(gp, g)
    return 1
  end
  local removed = redis.call('ZREM', gp .. 'w:' .. g, id)
  if removed == 1 then
    redis.call('DECR', gp .. 'n')
    groupTidy(gp, g)
  end
  return removed
end

-- Waiting jobs over all groups (ready jobs that are not in the ready lists).
local function groupWaitingCount(gp)
  return tonumber(redis.call('GET', gp .. 'n')) or 0
end

-- Up to `count` waiting job ids from position `offset`, groups by name, each group's jobs in
-- turn order. Walks the groups (administrative paths only: O(groups)).
local function groupWaitingRange(gp, offset, count)
  local ids = {}
  local skip = offset
  for _, g in ipairs(redis.call('ZRANGE', gp .. 'i', 0, -1)) do
    if #ids >= count then
      break
    end
    local key = gp .. 'w:' .. g
    local len = redis.call('ZCARD', key)
    if skip >= len then
      skip = skip - len
    else
      for _, id in ipairs(redis.call('ZRANGE', key, skip, skip + count - #ids - 1)) do
        ids[#ids + 1] = id
      end
      skip = 0
    end
  end
  return ids
end
