--[[
  Parks: a worker's demand left over by a reserve that found too few ready jobs, kept so that the
  next add hands its jobs over directly (one hop from the add to the handler) instead of waking the
  worker to reserve them (two more).

    <active>:p  hash  park id -> `<seq>|<jobs>|<deadline>|<leaseMs>|<worker>`

  A park belongs to one caller (its id) and is replaced by that caller's next reserve. An add that
  finds nothing ready before it (so its jobs would be next in line anyway), on an unpaused queue,
  leases up to `jobs` of its new ungrouped, due jobs to the park under one lease (includes/leases.lua),
  takes them off the park's size (deleting it at 0) and publishes the lease on
  `<handoffPrefix><park id>` (parkMessage). A park past its deadline gets nothing; one a minute
  past it (its owner is gone) is deleted by the next add that finds it.
]]

local PARK_STALE_MS = 60000

local function parksKey(activeKey)
  return activeKey .. ':p'
end

-- Removes the park `id` if it is still there with sequence `seq`: its size if it was, else 0
-- (handed over, expired and deleted, or never made; a park of another sequence stays).
local function parkCancel(activeKey, id, seq)
  local key = parksKey(activeKey)
  local v = redis.call('HGET', key, id)
  if not v then
    return 0
  end
  local s, jobs = string.match(v, '^(%d+)|(%d+)|')
  if s ~= seq then
    return 0
  end
  redis.call('HDEL', key, id)
  return tonumber(jobs)
end

local function parkPut(activeKey, id, seq, jobs, deadline, leaseMs, workerId)
  redis.call('HSET', parksKey(activeKey), id, string.format('%s|%d|%d|%d|%s', seq, jobs, deadline, leaseMs, workerId))
end

-- Every park of the queue, as HGETALL answers its hash (none: an empty table).
local function parksRead(activeKey)
  return redis.call('HGETALL', parksKey(activeKey))
end

-- The parks of `all` (as parksRead answered, in this call) that can take jobs now: { id, seq, jobs,
-- deadline, leaseMs, workerId, and jobsS, deadlineS and leaseMsS: jobs, deadline and leaseMs as
-- stored } each; stale ones deleted.
local function parksOpen(activeKey, all, now)
  local key = parksKey(activeKey)
  local open = {}
  for i = 1, #all, 2 do
    local seq, jobs, deadlineS, leaseMs, workerId = string.match(all[i + 1], '^(%d+)|(%d+)|(%d+)|(%d+)|(.*)$')
    local deadline = tonumber(deadlineS)
    if not deadline or deadline < now - PARK_STALE_MS then
      redis.call('HDEL', key, all[i])
    elseif deadline >= now then
      open[#open + 1] = { id = all[i], seq = seq, jobs = tonumber(jobs), jobsS = jobs, deadline = deadline, deadlineS = deadlineS, leaseMs = tonumber(leaseMs), leaseMsS = leaseMs, workerId = workerId }
    end
  end
  return open
end

-- Takes `taken` jobs off the park's size: the rest stays parked, or the park goes. The park's value
-- is put together from its strings as stored (parkPut's string.format costs a script more).
local function parkTake(activeKey, park, taken)
  if taken >= park.jobs then
    redis.call('HDEL', parksKey(activeKey), park.id)
  else
    local rest = string.format('%d', park.jobs - taken)
    redis.call('HSET', parksKey(activeKey), park.id, park.seq .. '|' .. rest .. '|' .. park.deadlineS .. '|' .. park.leaseMsS .. '|' .. park.workerId)
  end
end

-- The message of a handoff (a JSON array of strings): the park's sequence and size, now, the
-- lease's token, length and worker, the job count, and per job its id, field count and fields (the
-- record as HGETALL answers it; not joined as a reserve's reply does, reserve-6.lua: a JSON
-- message costs the worker no more per string, and workers of earlier versions read this layout).
-- `nowS` is the store's now as a string; every value of the message is a string (`.. ''` turns a
-- number into one, as tostring does, and gives a string back as it is, without a call).
local function parkMessage(park, nowS, token, ids, fieldsOf)
  local m = { park.seq, park.jobsS, nowS, token, park.leaseMsS, park.workerId, string.format('%d', #ids) }
  local n = #m
  for _, id in ipairs(ids) do
    local f = fieldsOf[id]
    m[n + 1] = id
    m[n + 2] = string.format('%d', #f)
    n = n + 2
    for j = 1, #f do
      n = n + 1
      m[n] = f[j] .. ''
    end
  end
  return cjson.encode(m)
end

-- parkMessage of one job of a compact record (fields d, its data, and c, created at `nowS`), written
-- out: an add of one job sends it (enqueue-5.lua), where the general loop is most of the message's cost.
local function parkMessageOne(park, nowS, token, id, data)
  return cjson.encode({ park.seq, park.jobsS, nowS, token, park.leaseMsS, park.workerId, '1', id, '4', 'd', data, 'c', nowS })
end
