--[[
  Where a job is (its record in either place, includes/compact.lua): nil (no record), 'c' completed, 'x' cancelled, 'd' dead (field s), 'a' running (held by
  a lease, includes/leases.lua), 'c' completed (in the finished index, includes/leases.lua), 's'
  scheduled (in the scheduled zset), else 'w' ready. Also returns the priority.
]]
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"
local function jobState(jobPrefix, id, activeKey, scheduledKey)
  local f = redis.call('HMGET', jobPrefix .. id, 'c', 's', 'p')
  if not f[1] then
    -- No record of its own: a compact one (includes/compact.lua) has no state or priority field.
    if redis.call('HEXISTS', compactKeyOf(jobPrefix, id), id) == 0 then
      return nil, nil
    end
    f = { true, false, false }
  end
  if f[2] then
    return f[2], f[3]
  end
  if finishedIndexOf(activeKey, id) then
    return 'c', f[3]
  end
  if redis.call('ZSCORE', scheduledKey, id) then
    return 's', f[3]
  end
  -- Last: finding a job's lease reads every lease.
  if leaseFind(activeKey, id) then
    return 'a', f[3]
  end
  return 'w', f[3]
end
