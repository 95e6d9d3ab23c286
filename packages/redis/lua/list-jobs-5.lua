--[[
  list-jobs: one page of a queue's jobs in one state, in the order MemoryStore lists them: ready by
  priority then FIFO, scheduled by run-at, running by lease start, completed / cancelled / dead
  newest first. Due scheduled jobs are promoted first, as reserve would.

  KEYS:
    1  priorities  zset  priorities that have ready jobs
    2  scheduled   zset  scheduled job ids by run-at
    3  active      zset  running job ids by lease deadline
    4  dead        list  dead-letter ids, newest first
    5  finished    list  completed and cancelled jobs, newest first ("c<id>" / "x<id>")

  ARGV:
    1  jobPrefix    prefix of job record keys
    2  readyPrefix  prefix of the per-priority ready lists
    3  state        ready | scheduled | running | completed | dead | cancelled
    4  offset
    5  limit
    6  maxPromote   most scheduled jobs promoted by this call

  Returns:
    { count, count × record } where a record is as get-job returns it.

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/ready.lua"
--- @include "includes/promote.lua"
--- @include "includes/records.lua"

local prioritiesKey, scheduledKey, activeKey, deadKey, finishedKey = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local jobPrefix, readyPrefix, state = ARGV[1], ARGV[2], ARGV[3]
local offset, limit, maxPromote = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
if #ARGV ~= 6 or not (offset and limit and maxPromote) then
  return -2
end

local now = storeNow()
promoteDue(scheduledKey, prioritiesKey, jobPrefix, readyPrefix, now, maxPromote)

local reply = { 0 }
local add = function(id, code, deadline)
  appendRecord(reply, jobPrefix .. id, id, code, deadline)
  reply[1] = reply[1] + 1
end
if limit <= 0 then
  return reply
end

if state == 'ready' then
  local skip = offset
  for _, p in ipairs(redis.call('ZRANGE', prioritiesKey, 0, -1)) do
    local key = readyPrefix .. p
    local len = redis.call('LLEN', key)
    if skip >= len then
      skip = skip - len
    else
      local need = limit - reply[1]
      for _, id in ipairs(redis.call('LRANGE', key, skip, skip + need - 1)) do
        add(id, 'w', false)
      end
      skip = 0
      if reply[1] >= limit then
        break
      end
    end
  end
elseif state == 'scheduled' then
  for _, id in ipairs(redis.call('ZRANGE', scheduledKey, offset, offset + limit - 1)) do
    add(id, 's', false)
  end
elseif state == 'running' then
  local active = redis.call('ZRANGE', activeKey, 0, -1, 'WITHSCORES')
  local rows = {}
  for i = 1, #active, 2 do
    local f = redis.call('HMGET', jobPrefix .. active[i], 'g', 'k')
    local seq = f[2] and tonumber(string.match(f[2], '^(%d+)')) or 0
    rows[#rows + 1] = { id = active[i], deadline = active[i + 1], started = tonumber(f[1]) or 0, seq = seq }
  end
  table.sort(rows, function(a, b)
    if a.started ~= b.started then
      return a.started < b.started
    end
    return a.seq < b.seq
  end)
  for i = offset + 1, math.min(#rows, offset + limit) do
    add(rows[i].id, 'a', rows[i].deadline)
  end
elseif state == 'dead' then
  for _, id in ipairs(redis.call('LRANGE', deadKey, offset, offset + limit - 1)) do
    add(id, 'd', false)
  end
elseif state == 'completed' or state == 'cancelled' then
  local want = state == 'completed' and 'c' or 'x'
  local skip = offset
  local start = 0
  while reply[1] < limit do
    local entries = redis.call('LRANGE', finishedKey, start, start + 499)
    if #entries == 0 then
      break
    end
    for _, entry in ipairs(entries) do
      local id = string.sub(entry, 2)
      if string.sub(entry, 1, 1) == want then
        if skip > 0 then
          skip = skip - 1
        else
          add(id, want, false)
          if reply[1] >= limit then
            break
          end
        end
      end
    end
    start = start + 500
  end
else
  return -2
end
return reply
