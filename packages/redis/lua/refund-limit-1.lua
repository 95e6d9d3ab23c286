--[[
  refund-limit: removes units of a rate limit recorded at exactly one time, for work that never
  started there (a unit handed back at its slot: the worker could not start it in its margin). Always
  safe: removing units no work used only lowers every window's count. Units not found (moved, or
  their entry gone) are left alone.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)
    2… the logs of the work's further limits (ARGV 5), refunded at the same time

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  at        store time (ms) the units were recorded at
    4  units     how many units to remove (at most allowed)
    5  marginMs  the part of periodMs that is a margin
    6  more      number of further limits (0…); then per limit: allowed, periodMs, marginMs

  Returns:
    {now}  the store's now

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"

local allowed, periodMs = tonumber(ARGV[1]), tonumber(ARGV[2])
local at, units = tonumber(ARGV[3]), tonumber(ARGV[4])
local marginMs, more = tonumber(ARGV[5]), tonumber(ARGV[6])
if not more or #ARGV ~= 6 + 3 * more or #KEYS ~= 1 + more or not marginMs or not allowed or not periodMs or not at or not units or units < 1 then
  return -2
end
local now = storeNow()
local Ls = limiterOpenAll(KEYS[1], allowed, periodMs, marginMs, 1, 6, more, now)
if not Ls then
  return -2
end
for _, L in ipairs(Ls) do
  limiterRefund(L, at, math.min(units, L.allowed))
  limiterSave(L)
end
return { now }
