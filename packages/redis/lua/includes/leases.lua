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
                              w worker (absent: none)
    <active>:t:<token>:i list  the ids leased, in order (recovery and listings read it)

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
  local pairs_ = { '', LEASE_INDEX_PLACEHOLDER }
  for i, id in ipairs(ids) do
    pairs_[2 * i + 1] = id
    pairs_[2 * i + 2] = token
  end
  callChunked('HSET', leaseJobsKey(activeKey), pairs_)
  local key = leaseKey(activeKey, token)
  local n = string.format('%d', #ids)
  if workerId ~= '' then
    redis.call('HSET', key, 'n', n, 'g', nowS, 'w', workerId)
  else
    redis.call('HSET', key, 'n', n, 'g', nowS)
  end
  callChunked('RPUSH', key .. ':i', ids)
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
      redis.call('DEL', key, key .. ':i')
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
  local held = {}
  local ids = redis.call('LRANGE', leaseKey(activeKey, token) .. ':i', 0, -1)
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
