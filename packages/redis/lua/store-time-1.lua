--[[
  store-time: the store clock (Redis TIME in whole milliseconds) on the node that holds the queue,
  the clock every grant, lease and run-at of that queue is stamped with. A worker maps it onto its
  own clock before it first reserves under a rate limit (see LeaseClock in @sluice/core).

  KEYS:
    1  settings  hash  the queue's settings (not read: it routes the call to the queue's node)

  ARGV:
    none

  Returns:
    the store time in ms

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"

if #ARGV ~= 0 then
  return -2
end
return storeNow()
