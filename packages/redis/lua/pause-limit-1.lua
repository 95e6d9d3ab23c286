--[[
  pause-limit: a provider refused a call and asked to wait (a 429 with Retry-After, a quota error):
  no unit of this rate limit is placed before now + ms, by any reserve or move, in any process
  (see includes/limiter.lua, field b). A pause never shortens one already in force. The new end is
  published on `channel`, so every worker sharing the limit stops starting units of earlier slots
  within a round trip.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  ms        how long to pause, from the store's now
    4  channel   where the pause's end is published
    5  marginMs  the part of periodMs that is a margin (kept under store-wide numbers)

  Returns:
    {until, now}  the store time the pause ends, and the store's now

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"
--- @include "includes/publish.lua"

local limiterKey = KEYS[1]
local allowed, periodMs, ms = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local channel = ARGV[4]
local marginMs = tonumber(ARGV[5])
if #ARGV ~= 5 or not marginMs or not allowed or not periodMs or not ms or ms < 0 or not channel then
  return -2
end
local L = limiterOpen(limiterKey, allowed, periodMs, marginMs, storeNow())
L.pausedUntil = math.max(L.pausedUntil, L.now + ms)
limiterSave(L)
publish(channel, L.pausedUntil)
return { L.pausedUntil, L.now }
