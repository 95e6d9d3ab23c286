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
    <active>:t:<token>  hash  w worker (absent: none); for a lease of one job, i its id; once some
                              but not all of its jobs are released, r minus the number released
    <active>:t:<token>:i list  for a lease of several jobs, their ids in order (recovery and
                              listings read them)
    <active>:f          hash  the finished index: job id -> '<f>|<g>' (finish time, lease start),
                              and the placeholder field '' that <active>:j has, for the same
                              reason: while a queue keeps fewer finished jobs than
                              hash-max-listpack-entries, every settle's write and every lookup
                              scanned the listpack (a settle of one job: 318,000 instructions
                              with a finished index of a few hundred jobs, 297,000 without the scan)
                              of each job a settle completed on its fast path (a `C` entry of
                              settle-8.lua: a first attempt, at the default priority, of no group
                              and no own retention, with no result). That job's record is not
                              written when it finishes: its terminal state (completed), finish
                              time, start and attempts (1) are this entry, so a settle of a batch
                              writes one hash for all of its jobs instead of every record (the
                              HSET of each record was a fifth of a settle's instructions). An
                              entry lives as long as its record: whatever deletes a finished
                              record deletes its entry (retention, remove-job, purge, obliterate).

  A token is `<sequence>.<store ms>.<jobs>`: when the lease started (leaseStart) and how many jobs
  it was given (leaseSize), so a settle that releases all of them at once deletes the lease without
  counting (the common case: a batch settled together).

  A job's attempt counter (record field a) counts attempts that ended; the running one is a + 1,
  written when it ends (settle, recovery, rejection). All of these keys carry the queue's hash tag,
  as the active key does.
]]
--- @include "includes/chunked.lua"

local function leaseJobsKey(activeKey)
  return activeKey .. ':j'
end

local HASH_TABLE_PLACEHOLDER = 'placeholder: keeps this hash in the hash-table encoding (a value over 64 bytes)'

local function leaseKey(activeKey, token)
  return activeKey .. ':t:' .. token
end

-- When the lease `token` started (store ms, as a string), from the token itself.
local function leaseStart(token)
  return string.match(token, '^%d+%.(%d+)')
end

-- How many jobs the lease `token` was given.
local function leaseSize(token)
  return tonumber(string.match(token, '%.(%d+)$')) or 0
end

-- Leases `ids` under `token` until `deadline`.
local function leaseOpen(activeKey, token, ids, deadline, workerId)
  local pairs_ = { '', HASH_TABLE_PLACEHOLDER }
  for i = 1, #ids do
    pairs_[2 * i + 1] = ids[i]
    pairs_[2 * i + 2] = token
  end
  callChunked('HSET', leaseJobsKey(activeKey), pairs_)
  local key = leaseKey(activeKey, token)
  local fields = {}
  if workerId ~= '' then
    fields[1] = 'w'
    fields[2] = workerId
  end
  if #ids == 1 then
    fields[#fields + 1] = 'i'
    fields[#fields + 1] = ids[1]
  else
    callChunked('RPUSH', key .. ':i', ids)
  end
  if #fields > 0 then
    redis.call('HSET', key, unpack(fields))
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

-- Deletes the index entries of `ids` (each listed once: held by a lease); returns how many there
-- were. A settle deletes them first and counts: fewer than it listed means an id came twice.
local function leaseUnindex(activeKey, ids)
  return callChunked('HDEL', leaseJobsKey(activeKey), ids)
end

-- Adds `n` released jobs of the lease `token` to `counts`, listing the token in `order` the first time.
local function leaseCountReleased(counts, order, token, n)
  local c = counts[token]
  if not c then
    order[#order + 1] = token
    c = 0
  end
  counts[token] = c + n
end

-- Releases `counts[t]` jobs of each lease t of `order` (their index entries deleted already); a
-- lease with no job left is deleted.
local function leaseReleaseCounted(activeKey, order, counts)
  for _, t in ipairs(order) do
    local key = leaseKey(activeKey, t)
    local size = leaseSize(t)
    -- All of its jobs released by this call, or the ones released before and these make all.
    if counts[t] >= size or redis.call('HINCRBY', key, 'r', -counts[t]) <= -size then
      redis.call('DEL', key, key .. ':i')
      redis.call('ZREM', activeKey, t)
    end
  end
end

-- Releases `ids`, each held by the lease of the same index in `tokens`; a lease with no job left
-- is deleted.
local function leaseRelease(activeKey, ids, tokens)
  if #ids == 0 then
    return
  end
  callChunked('HDEL', leaseJobsKey(activeKey), ids)
  -- Jobs per lease: the jobs of one lease come together, so a run of one token is counted without
  -- a lookup per job.
  local perToken, order = {}, {}
  local i, n = 1, #ids
  while i <= n do
    local t = tokens[i]
    local j = i
    while j < n and tokens[j + 1] == t do
      j = j + 1
    end
    leaseCountReleased(perToken, order, t, j - i + 1)
    i = j + 1
  end
  leaseReleaseCounted(activeKey, order, perToken)
end

-- The ids `token` still holds (its list, less the ones released).
local function leaseHeld(activeKey, token)
  local held = {}
  local key = leaseKey(activeKey, token)
  local one = redis.call('HGET', key, 'i')
  local ids = one and { one } or redis.call('LRANGE', key .. ':i', 0, -1)
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

local function finishedIndexKey(activeKey)
  return activeKey .. ':f'
end

-- The finish time and lease start (strings) of a job in the finished index, or nil.
local function finishedIndexOf(activeKey, id)
  local v = redis.call('HGET', finishedIndexKey(activeKey), id)
  if v then
    return string.match(v, '^([^|]*)|(.*)$')
  end
  return nil
end

-- Every running job as { id, deadline, started }: by lease start, then by reserve call, then in
-- the order its call leased it.
local function leaseRunning(activeKey)
  local active = redis.call('ZRANGE', activeKey, 0, -1, 'WITHSCORES')
  local leases = {}
  for i = 1, #active, 2 do
    local token = active[i]
    local g = leaseStart(token)
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
