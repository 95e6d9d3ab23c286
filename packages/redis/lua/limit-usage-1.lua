--[[
  limit-usage: units of a rate limit granted in the window of periodMs ending now (store clock), for
  dashboards. Read only.

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)

  ARGV:
    1  periodMs  the window

  Returns:
    the number of units

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"

local limiterKey = KEYS[1]
local periodMs = tonumber(ARGV[1])
if #ARGV ~= 1 or not periodMs then
  return -2
end
local cutoff = storeNow() - periodMs
local s = redis.call('HMGET', limiterKey, 'h', 't')
local head, tail = tonumber(s[1]) or 0, tonumber(s[2]) or 0
local used = 0
for i = tail - 1, head, -1 do
  local t, c = limiterEntry(limiterKey, i)
  if not t or t <= cutoff then
    break
  end
  used = used + c
end
return used
