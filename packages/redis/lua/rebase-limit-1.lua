--[[
  rebase-limit: moves units of a rate limit from the time they were granted to now, for work that
  starts later than it was counted (a worker that stalled between the reserve and the handler call).
  The limit then holds for the times the work really started, not only for the grant times.

  Moving a unit that is still in the window to the present never breaks the limit: every window that
  gains it already held it. A unit whose grant left the window is granted afresh, if the limit allows.
  All or nothing: when the fresh part does not fit, nothing changes.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  from      store time (ms) the units were granted at
    4  units     how many units to move

  Returns:
    {1, now}           moved; `now` is the store time they are recorded at
    {0, retryAfterMs}  the grant left the window and the limit is spent: try again after that long

  Errors:
    -1  the rate-limit key is in use with a different allowed / periodMs
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"

local limiterKey = KEYS[1]
local allowed, periodMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local from, units = tonumber(ARGV[3]), tonumber(ARGV[4])
if #ARGV ~= 4 or not allowed or not periodMs or not from or not units or units < 1 then
  return -2
end
local L = limiterOpen(limiterKey, allowed, periodMs, storeNow())
if not L then
  return -1
end

-- Units still recorded at `from` (in the window: limiterOpen evicted the rest).
local found = {}
local left = units
for i = L.head, L.tail - 1 do
  if left == 0 then
    break
  end
  local t, c = limiterEntry(limiterKey, i)
  if t and t == from and c > 0 then
    local take = math.min(left, c)
    found[#found + 1] = { i, t, c, take }
    left = left - take
  elseif t and t > from then
    break
  end
end

-- `left` units have no grant in the window any more: they need room now.
if left > 0 and left > L.available then
  return { 0, limiterRetryAfter(L) }
end
for _, f in ipairs(found) do
  redis.call('HSET', limiterKey, f[1], f[2] .. ':' .. (f[3] - f[4]))
  L.used = L.used - f[4]
end
limiterRecord(L, units)
limiterSave(L)
return { 1, L.now }
