--[[
  rebase-limit: moves units of a rate limit from the time they were granted to now, or to lagMs
  before now (never before their grant), for work that starts later than it was counted (a worker
  that stalled between the reserve and the handler call, or waited for a free slot). A worker that
  starts work lagMs after its grant passes that lag: a start made as this answer arrives then
  counts from when it would have been granted. The limit then holds for the times the work really
  started, not only for the grant times.

  Moving a unit that is still in the window later never breaks the limit: every window that gains it
  ends after now, and later grants see it in the log (where it may sit out of time order: it is then
  evicted late, which only holds back units longer). A unit whose grant left the window is granted
  afresh at now, if the limit allows. All or nothing: when the fresh part does not fit, nothing
  changes.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  from      store time (ms) the units were granted at
    4  units     how many units to move
    5  lagMs     record the units this long before now (≥ 0; never before `from`)

  Returns:
    {1, at, now}       moved; `at` is the store time they are recorded at, `now` the store's now
    {0, retryAfterMs}  the grant left the window and the limit is spent: try again after that long

  Errors:
    -1  the rate-limit key is in use with a different allowed / periodMs
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"

local limiterKey = KEYS[1]
local allowed, periodMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local from, units, lagMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
if #ARGV ~= 5 or not allowed or not periodMs or not from or not units or units < 1 or not lagMs or lagMs < 0 then
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
-- Units found in the window move to lagMs before now; any granted afresh count from now.
local at = L.now
if left == 0 then
  at = math.max(from, L.now - lagMs)
end
limiterRecordAt(L, at, units)
limiterSave(L)
return { 1, at, L.now }
