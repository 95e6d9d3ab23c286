--[[
  Appends one job record to a reply for inspection: id, state (w s a c d x), lease deadline (nil
  unless running), the number of hash values that follow, then the record's fields and values. A
  running job's lease fields come from its lease (includes/leases.lua): k token, g start, w worker,
  and a the attempt running (one more than the record counts). A job completed on a settle's fast
  path gets s, f, a and g from the finished index (includes/leases.lua), as if its record held them.
]]
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"
local LEASE_FIELDS = { k = true, g = true, w = true, a = true }
local function appendRecord(reply, jobPrefix, id, state, activeKey)
  -- Its own hash, or its compact record.
  local fields = recordFields(jobPrefix, id)
  local deadline = false
  if state == 'a' then
    local token = leaseFind(activeKey, id)
    local kept, attempt = {}, 0
    for i = 1, #fields, 2 do
      if fields[i] == 'a' then
        attempt = tonumber(fields[i + 1]) or 0
      elseif not LEASE_FIELDS[fields[i]] then
        kept[#kept + 1] = fields[i]
        kept[#kept + 1] = fields[i + 1]
      end
    end
    if token then
      deadline = redis.call('ZSCORE', activeKey, token)
      local started = leaseStart(token)
      local worker = redis.call('HGET', leaseKey(activeKey, token), 'w')
      kept[#kept + 1] = 'k'
      kept[#kept + 1] = token
      if started then
        kept[#kept + 1] = 'g'
        kept[#kept + 1] = started
      end
      if worker then
        kept[#kept + 1] = 'w'
        kept[#kept + 1] = worker
      end
    end
    kept[#kept + 1] = 'a'
    kept[#kept + 1] = tostring(attempt + 1)
    fields = kept
  elseif state == 'c' then
    -- Completed on a settle's fast path: the record holds no terminal fields, the finished index does.
    local terminal = false
    for i = 1, #fields, 2 do
      if fields[i] == 's' then
        terminal = true
        break
      end
    end
    if not terminal then
      local finishedAt, started = finishedIndexOf(activeKey, id)
      if finishedAt then
        local n = #fields
        fields[n + 1], fields[n + 2], fields[n + 3], fields[n + 4] = 's', 'c', 'f', finishedAt
        fields[n + 5], fields[n + 6], fields[n + 7], fields[n + 8] = 'a', '1', 'g', started
      end
    end
  end
  reply[#reply + 1] = id
  reply[#reply + 1] = state
  reply[#reply + 1] = deadline
  reply[#reply + 1] = #fields
  for i = 1, #fields do
    reply[#reply + 1] = fields[i]
  end
end
