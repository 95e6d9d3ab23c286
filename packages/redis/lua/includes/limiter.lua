--[[
  An exact sliding-log rate limiter in one hash: never more than `allowed` units in any window of
  `period` ms. The same algorithm as SlidingWindowLimiter in @sluice/core, on the store's clock.

  A unit granted at time t occupies every window containing t, i.e. until t + period. Grants made in
  the same millisecond share one log entry, so the log holds at most one entry per grant call within a
  period. Fields: A allowed, P period (a key reused with other numbers is refused), h index of the
  oldest entry, t index after the newest, n units in the window, and entries "<index>" = "<time>:<units>".
  The key expires one period after the last grant, when every entry would have been evicted anyway.
  Entries are in time order, except units moved to a time before the newest entry (rebase-limit
  with a lag): such an entry is evicted when the entries before it are, late but never early.
]]
local function limiterEntry(key, index)
  local e = redis.call('HGET', key, index)
  if not e then
    return nil, 0
  end
  local sep = string.find(e, ':', 1, true)
  return tonumber(string.sub(e, 1, sep - 1)), tonumber(string.sub(e, sep + 1))
end

-- Loads the log, evicts entries at or before now - period. Returns nil on a config conflict.
local function limiterOpen(key, allowed, period, now)
  local s = redis.call('HMGET', key, 'A', 'P', 'h', 't', 'n')
  if s[1] and (tonumber(s[1]) ~= allowed or tonumber(s[2]) ~= period) then
    return nil
  end
  local L = {
    key = key,
    allowed = allowed,
    period = period,
    head = tonumber(s[3]) or 0,
    tail = tonumber(s[4]) or 0,
    used = tonumber(s[5]) or 0,
    now = now,
  }
  local cutoff = now - period
  while L.head < L.tail do
    local t, c = limiterEntry(key, L.head)
    if t and t > cutoff then
      break
    end
    redis.call('HDEL', key, L.head)
    L.used = L.used - c
    L.head = L.head + 1
  end
  if L.head >= L.tail then
    L.used = 0
  elseif L.tail > L.head then
    -- Keep the log sorted even if the server clock stepped back: never record before the newest entry.
    local last = limiterEntry(key, L.tail - 1)
    if last and last > L.now then
      L.now = last
    end
  end
  L.available = math.max(0, allowed - L.used)
  return L
end

-- Records `units` at time `at`: merged into the newest entry if it has that time, else a new entry.
-- `at` may be older than the newest entry (a moved start, see rebase-limit); the log is then out
-- of time order there, which eviction tolerates by evicting that entry late (never early).
local function limiterRecordAt(L, at, units)
  if units <= 0 then
    return
  end
  if L.tail > L.head then
    local t, c = limiterEntry(L.key, L.tail - 1)
    if t == at then
      redis.call('HSET', L.key, L.tail - 1, t .. ':' .. (c + units))
      L.used = L.used + units
      return
    end
  end
  redis.call('HSET', L.key, L.tail, at .. ':' .. units)
  L.tail = L.tail + 1
  L.used = L.used + units
end

local function limiterRecord(L, units)
  limiterRecordAt(L, L.now, units)
end

-- Ms from now until at least one unit is available (0 if one is available now). Entries leave the
-- window in log order, so an entry goes no earlier than any entry before it.
local function limiterRetryAfter(L)
  local excess = L.used - L.allowed + 1
  if excess <= 0 then
    return 0
  end
  local latest = nil
  for i = L.head, L.tail - 1 do
    local t, c = limiterEntry(L.key, i)
    if t and (not latest or t > latest) then
      latest = t
    end
    excess = excess - c
    if excess <= 0 then
      return latest + L.period - L.now
    end
  end
  return L.period
end

local function limiterSave(L)
  if L.head >= L.tail then
    redis.call('DEL', L.key)
    return
  end
  redis.call('HSET', L.key, 'A', L.allowed, 'P', L.period, 'h', L.head, 't', L.tail, 'n', L.used)
  redis.call('PEXPIRE', L.key, L.period + 1000)
end
