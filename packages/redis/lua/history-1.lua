--[[
  history: per-minute completed / failed counters for the last `minutes` minutes of the store's
  clock, oldest first. Read only.

  KEYS:
    1  counters  hash  not read: routes the call to the queue's slot (the minute keys are derived)

  ARGV:
    1  historyPrefix  prefix of the per-minute history hashes
    2  minutes        how many minutes, ending with the current one

  Returns:
    { currentMinuteStartMs, minutes × [completed, failed] } oldest first

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"

local historyPrefix = ARGV[1]
local minutes = tonumber(ARGV[2])
if #ARGV ~= 2 or not minutes then
  return -2
end
local current = math.floor(storeNow() / 60000) * 60000
local reply = { current }
for i = minutes - 1, 0, -1 do
  local b = redis.call('HMGET', historyPrefix .. (current - i * 60000), 'c', 'f')
  reply[#reply + 1] = tonumber(b[1]) or 0
  reply[#reply + 1] = tonumber(b[2]) or 0
end
return reply
