--[[
  rebase-limit: moves units of a rate limit from the time they were recorded at to a new slot, for
  work that could not start within the limit's margin after its slot (a worker that stalled, or
  learnt of its slot too late). The units leave their old time (if still in the log: no work
  started there) and are recorded together leadMs after now, among later slots, where that surely
  keeps every window within its limit (see limiterMoveInPlace), else at the first time after the
  newest slot where the window has room for all of them (see includes/limiter.lua). Always safe: the new slot is checked
  like any grant, and removing units no work used only lowers every window's count.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)
    2… the logs of the work's further limits (ARGV 7), moved to the same slot

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  from      store time (ms) the units were recorded at
    4  units     how many units to move (at most allowed)
    5  leadMs    the new slot is at least this long after now
    6  marginMs  the part of periodMs that is a margin (kept under store-wide numbers)
    7  more      number of further limits (0…); then per limit: allowed, periodMs, marginMs

  Returns:
    {at, now}  the store time the units are now recorded at, and the store's now

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"

local limiterKey = KEYS[1]
local allowed, periodMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local from, units, leadMs = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local marginMs, more = tonumber(ARGV[6]), tonumber(ARGV[7])
if not more or #ARGV ~= 7 + 3 * more or #KEYS ~= 1 + more or not marginMs or not allowed or not periodMs or not from or not units or units < 1 or not leadMs or leadMs < 0 then
  return -2
end
local now = storeNow()
local Ls = limiterOpenAll(limiterKey, allowed, periodMs, marginMs, 1, 7, more, now)
if not Ls then
  return -2
end
for _, L in ipairs(Ls) do
  units = math.min(units, L.allowed)
end
-- In place where the logs allow it (see limiterMoveInPlace), else after the newest slot with room.
local at = now + leadMs
for _, L in ipairs(Ls) do
  if L.pausedUntil > at then
    at = L.pausedUntil
  end
end
if limiterMoveInPlace(Ls, from, units, at) then
  for _, L in ipairs(Ls) do
    limiterSave(L)
  end
  return { at, now }
end
for _, L in ipairs(Ls) do
  limiterRefund(L, from, units)
end
local slots = limiterPlan(Ls, 1, { units }, now + leadMs, math.huge, true)
limiterCommit(Ls, slots, 1, { units })
for _, L in ipairs(Ls) do
  limiterSave(L)
end
return { slots[1][1], now }
