--[[
  The store clock: Redis TIME in whole milliseconds since the epoch. Every time a script records
  (lease deadlines, run-at, finish times, rate-limit log entries) comes from here, never from a worker.
]]
local function storeNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- The store clock as storeNow's number and its decimal string, the string put together from TIME's
-- two strings (seconds, then the milliseconds: the microseconds' leading digits, padded to three):
-- Lua would print a number as a float (%.14g), which costs a script several times more.
local function storeNowS()
  local t = redis.call('TIME')
  local us = t[2]
  local ms = #us > 3 and string.sub(us, 1, -4) or ''
  local s = t[1] .. string.sub('000', #ms + 1) .. ms
  return tonumber(s), s
end
