--[[
  extend: moves the deadline of each lease that still holds the job given with its token to
  now + leaseMs (a lease holds every job of one reserve call: extending it for one of them extends
  it for all; includes/leases.lua).

  KEYS:
    1  active  zset  lease tokens by deadline (includes/leases.lua)

  ARGV:
    1  jobPrefix  prefix of job record keys
    2  leaseMs    new lease length from the store's now
    3  count      number of leases that follow
    4… per lease: id, token

  Returns:
    { now, flag1, flag2, ... } in the order given: 1 extended, 0 lost.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/leases.lua"

local activeKey = KEYS[1]
local jobPrefix = ARGV[1]
local leaseMs = tonumber(ARGV[2])
local count = tonumber(ARGV[3])
if not (leaseMs and count) or #ARGV ~= 3 + count * 2 then
  return -2
end
local now = storeNow()
local deadline = tostring(now + leaseMs)
local reply = { now }
local extended = {}
for i = 0, count - 1 do
  local id, token = ARGV[4 + i * 2], ARGV[5 + i * 2]
  -- A live lease still holds the job; extending it moves the deadline of every job it holds.
  if leaseHolds(activeKey, token, id) then
    if not extended[token] then
      redis.call('ZADD', activeKey, 'XX', deadline, token)
      extended[token] = true
    end
    reply[#reply + 1] = 1
  else
    reply[#reply + 1] = 0
  end
end
return reply
