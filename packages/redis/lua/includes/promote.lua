--[[
  Moves scheduled jobs whose run-at has passed to the ready lists, oldest run-at first, at most `max`
  per call (bounded work: the next call continues). A promoted job's ready time is its run-at (field
  `r`), so a fill wait counts from when the job became due, not from when someone noticed. A job of
  a group goes to its group (includes/groups.lua): a retry that kept its group slot through its
  backoff (field H) to the front, giving the slot back; any other job to the back.
]]
--- @include "includes/chunked.lua"
--- @include "includes/ready.lua"
--- @include "includes/groups.lua"

-- Scheduled job `id` (priority p, group g) becomes ready now.
local function promoteOne(jobPrefix, readyPrefix, prioritiesKey, groupPrefix, id, p, g, held)
  if held then
    redis.call('HDEL', jobPrefix .. id, 'H')
    groupPush(groupPrefix, g, p, id, true, readyPrefix, prioritiesKey)
    groupFree(groupPrefix, g, readyPrefix, prioritiesKey)
  else
    groupPush(groupPrefix, g, p, id, false, readyPrefix, prioritiesKey)
  end
end

-- `now` and `max` may be given as strings (a number given to redis.call is printed with %.17g,
-- several times the cost of the rest of the call when nothing is due).
local function promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, groupPrefix, now, max)
  local due = redis.call('ZRANGEBYSCORE', scheduledKey, '-inf', now, 'LIMIT', '0', max)
  if #due == 0 then
    return 0
  end
  local batch = readyBatch()
  for _, id in ipairs(due) do
    local f = redis.call('HMGET', jobPrefix .. id, 'c', 'p', 'G', 'H')
    if f[1] and f[3] then
      promoteOne(jobPrefix, readyPrefix, prioritiesKey, groupPrefix, id, f[2], f[3], f[4] == '1')
    elseif f[1] then
      readyAdd(batch, f[2], id)
    end
  end
  callChunked('ZREM', scheduledKey, due)
  readyFlush(batch, readyPrefix, prioritiesKey)
  return #due
end
