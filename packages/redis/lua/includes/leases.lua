--[[
  Leases: one per reserve call, not one per job, so leasing and releasing a batch costs a few
  commands whatever its size, and a job record is not written when it is leased.

    <active>            zset  lease tokens by deadline (recovery reads the expired ones)
    <active>:j          hash  job id -> token of the lease holding it (a running job is one listed
                              here), and one placeholder field '' (ids are never empty) whose value
                              is longer than hash-max-listpack-value (64 bytes by default): Redis
                              then keeps the hash in its hash-table encoding, where finding a field
                              does not scan the others (a listpack of a hundred running jobs made
                              every lookup of a settle a scan, about a tenth of its cost)
    <active>:t:<token>  hash  n jobs of the lease not yet released, g lease start (store ms),
                              w worker (absent: none), i the ids leased, each as its length, a
                              colon and the id (ids may hold any character)

  A job's attempt counter (record field a) counts attempts that ended; the running one is a + 1,
  written when it ends (settle, recovery, rejection). All of these keys carry the queue's hash tag,
  as the active key does.
]]

local function leaseJobsKey(activeKey)
  return activeKey .. ':j'
end

local LEASE_INDEX_PLACEHOLDER = 'placeholder: keeps this hash in the hash-table encoding (a value over 64 bytes)'

local function leaseKey(activeKey, token)
  return activeKey .. ':t:' .. token
end

-- Leases `ids` under `token` until `deadline`.
local function leaseOpen(activeKey, token, ids, nowS, deadline, workerId)
  local pairs_, listed = { '', LEASE_INDEX_PLACEHOLDER }, {}
  for i, id in ipairs(ids) do
    pairs_[2 * i + 1] = id
    pairs_[2 * i + 2] = token
    listed[i] = #id .. ':' .. id
  end
  callChunked('HSET', leaseJobsKey(activeKey), pairs_)
  if workerId ~= '' then
    redis.call('HSET', leaseKey(activeKey, token), 'n', #ids, 'g', nowS, 'w', workerId, 'i', table.concat(listed))
  else
    redis.call('HSET', leaseKey(activeKey, token), 'n', #ids, 'g', nowS, 'i', table.concat(listed))
  end
  redis.call('ZADD', activeKey, deadline, token)
end

-- The token of the lease holding each of `ids` (false where none), in one read.
local function leaseTokens(activeKey, ids)
  if #ids == 0 then
    return {}
  end
  return redis.call('HMGET', leaseJobsKey(activeKey), unpack(ids))
end

-- The token of the lease holding `id`, or false.
local function leaseTokenOf(activeKey, id)
  return redis.call('HGET', leaseJobsKey(activeKey), id)
end

-- Releases `ids`, each held by the lease of the same index in `tokens`; a lease with no job left
-- is deleted.
local function leaseRelease(activeKey, ids, tokens)
  if #ids == 0 then
    return
  end
  callChunked('HDEL', leaseJobsKey(activeKey), ids)
  local perToken, order = {}, {}
  for i = 1, #ids do
    local t = tokens[i]
    if not perToken[t] then
      perToken[t] = 0
      order[#order + 1] = t
    end
    perToken[t] = perToken[t] + 1
  end
  for _, t in ipairs(order) do
    local key = leaseKey(activeKey, t)
    if redis.call('HINCRBY', key, 'n', -perToken[t]) <= 0 then
      redis.call('DEL', key)
      redis.call('ZREM', activeKey, t)
    end
  end
end

-- Start and worker of the lease `token`: { g, w }.
local function leaseInfo(activeKey, token)
  return redis.call('HMGET', leaseKey(activeKey, token), 'g', 'w')
end

-- The ids `token` still holds (its list, less the ones released).
local function leaseHeld(activeKey, token)
  local listed = redis.call('HGET', leaseKey(activeKey, token), 'i')
  local held = {}
  if not listed then
    return held
  end
  local ids = {}
  local at = 1
  while at <= #listed do
    local colon = string.find(listed, ':', at, true)
    local len = tonumber(string.sub(listed, at, colon - 1))
    ids[#ids + 1] = string.sub(listed, colon + 1, colon + len)
    at = colon + len + 1
  end
  local tokens = leaseTokens(activeKey, ids)
  for i, id in ipairs(ids) do
    if tokens[i] == token then
      held[#held + 1] = id
    end
  end
  return held
end

-- Number of running jobs (the index, less its placeholder).
local function leaseCount(activeKey)
  return math.max(0, redis.call('HLEN', leaseJobsKey(activeKey)) - 1)
end

-- Every running job as { id, deadline, started }: by lease start, then by reserve call, then in
-- the order its call leased it.
local function leaseRunning(activeKey)
  local active = redis.call('ZRANGE', activeKey, 0, -1, 'WITHSCORES')
  local leases = {}
  for i = 1, #active, 2 do
    local token = active[i]
    local g = redis.call('HGET', leaseKey(activeKey, token), 'g')
    leases[#leases + 1] = {
      token = token,
      deadline = active[i + 1],
      started = tonumber(g) or 0,
      seq = tonumber(string.match(token, '^(%d+)')) or 0,
    }
  end
  table.sort(leases, function(a, b)
    if a.started ~= b.started then
      return a.started < b.started
    end
    return a.seq < b.seq
  end)
  local rows = {}
  for _, l in ipairs(leases) do
    for _, id in ipairs(leaseHeld(activeKey, l.token)) do
      rows[#rows + 1] = { id = id, deadline = l.deadline, started = l.started }
    end
  end
  return rows
end
