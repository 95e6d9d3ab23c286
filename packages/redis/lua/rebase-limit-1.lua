--[[
  rebase-limit: moves units of a rate limit from the time they were recorded at to a new slot, for
  work that could not start within the limit's margin after its slot (a worker that stalled, or
  learnt of its slot too late). The units leave their old time (if still in the log: no work
  started there) and are recorded together at the first time, leadMs or more after now, where the
  window has room for all of them (see includes/limiter.lua). Always safe: the new slot is checked
  like any grant, and removing units no work used only lowers every window's count.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  from      store time (ms) the units were recorded at
    4  units     how many units to move (at most allowed)
    5  leadMs    the new slot is at least this long after now
    6  marginMs  the part of periodMs that is a margin (kept under store-wide numbers)

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
local marginMs = tonumber(ARGV[6])
if #ARGV ~= 6 or not marginMs or not allowed or not periodMs or not from or not units or units < 1 or not leadMs or leadMs < 0 then
  return -2
end
local L = limiterOpen(limiterKey, allowed, periodMs, marginMs, storeNow())
limiterRefund(L, from, units)
local slots = limiterPlan(L, math.min(units, L.allowed), L.now + leadMs, math.huge, true)
limiterCommit(L, slots, math.min(units, L.allowed))
limiterSave(L)
return { slots[1][1], L.now }
