--[[
  get-job: one job record with its state, read in one consistent step.

  KEYS:
    1  active     zset  lease tokens by deadline (includes/leases.lua)
    2  scheduled  zset  scheduled job ids by run-at

  ARGV:
    1  jobPrefix  prefix of job record keys
    2  id         the job

  Returns:
    {} when there is no such job, else { id, state (w s a c d x), deadline or nil, fieldCount,
    field1, value1, ... }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/state.lua"
--- @include "includes/records.lua"

local activeKey, scheduledKey = KEYS[1], KEYS[2]
if #ARGV ~= 2 then
  return -2
end
local jobPrefix, id = ARGV[1], ARGV[2]
local state = jobState(jobPrefix, id, activeKey, scheduledKey)
if not state then
  return {}
end
local reply = {}
appendRecord(reply, jobPrefix, id, state, activeKey)
return reply
