--[[
  The store clock: Redis TIME in whole milliseconds since the epoch. Every time a script records
  (lease deadlines, run-at, finish times, rate-limit log entries) comes from here, never from a worker.
]]
local function storeNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
