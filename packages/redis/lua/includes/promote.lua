--[[
  Moves scheduled jobs whose run-at has passed to the ready lists, oldest run-at first, at most `max`
  per call (bounded work: the next call continues). A promoted job's ready time is its run-at (field
  `r`), so a fill wait counts from when the job became due, not from when someone noticed.
]]
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
local function promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, now, max)
  local due = redis.call('ZRANGEBYSCORE', scheduledKey, '-inf', now, 'LIMIT', 0, max)
  if #due == 0 then
    return 0
  end
  local batch = readyBatch()
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', jobPrefix .. id, 'c', 'p')
    if f[1] then
      readyAdd(batch, f[2], id)
    end
  end
  callChunked('ZREM', scheduledKey, due)
  readyFlush(batch, readyPrefix, prioritiesKey)
  return #due
end
