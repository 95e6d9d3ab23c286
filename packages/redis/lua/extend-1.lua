--[[
  extend: moves the deadline of each lease whose token still matches to now + leaseMs.

  KEYS:
    1  active  zset  running job ids by lease deadline

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
for i = 0, count - 1 do
  local id, token = ARGV[4 + i * 2], ARGV[5 + i * 2]
  -- A matching token (field k) on a job without a terminal state (field s) is a live lease.
  local f = redis.call('HMGET', jobPrefix .. id, 'k', 's')
  if f[1] == token and not f[2] then
    redis.call('ZADD', activeKey, 'XX', deadline, id)
    reply[#reply + 1] = 1
  else
    reply[#reply + 1] = 0
  end
end
return reply
