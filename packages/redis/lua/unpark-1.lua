--[[
  unpark: removes a caller's park (includes/parks.lua) if it is still there, for a worker that stops
  waiting without reserving (a drain, a pause).

  KEYS:
    1  active  zset  leases; its `:p` hash holds the parks

  ARGV:
    1  parkId
    2  seq     the park's sequence

  Returns:
    What was left of the park (it is removed), 0 if all of it was handed over or it is gone.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/parks.lua"

local activeKey = KEYS[1]
local parkId, seq = ARGV[1], ARGV[2]
if not parkId or not seq or #ARGV ~= 2 then
  return -2
end
return parkCancel(activeKey, parkId, seq)
