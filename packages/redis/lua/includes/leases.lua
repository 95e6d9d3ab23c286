--[[
  Leases: one per reserve call, not one per job, so leasing and releasing a batch costs a few
  commands whatever its size, and neither a job record nor an index entry per job is written when
  a job is leased.

    <active>            zset  lease tokens by deadline (recovery reads the expired ones)
    <active>:n          string  the jobs leases hold now (the queue's running jobs: the global
                              concurrency cap and stats read it)
    <active>:t:<token>  hash  j the ids it was given, in order, joined by NUL bytes (one id: the id
                              itself; '' when an id of several holds a NUL byte: then they are the
                              list below); w its worker (absent: none); once some but not all of
                              its jobs are released, r minus the number released and a field
                              '-<id>' for each released job
    <active>:t:<token>:i list  the ids of a lease of several jobs one of which holds a NUL byte
    <active>:r          zset  the ranges of ranged runs of the finished list (includes/finished.lua):
                              the finish time and lease start of jobs a settle completed on its fast
                              path as a run of consecutive ids, one member for the run
    <active>:f          hash  the finished index: job id -> '<f>|<g>' (finish time, lease start),
                              and a placeholder field '' (ids are never empty) whose value is longer
                              than hash-max-listpack-value (64 bytes by default): Redis then keeps
                              the hash in its hash-table encoding, where finding a field does not
                              scan the others (while a queue keeps fewer finished jobs than
                              hash-max-listpack-entries, every settle's write and every lookup
                              scanned the listpack: a settle of one job cost 318,000 instructions
                              with a finished index of a few hundred jobs, 297,000 without the scan).
                              It holds each job a settle completed on its fast path (a `C` entry of
                              settle-8.lua: a first attempt, at the default priority, of no group
                              and no own retention, with no result), except the jobs of a ranged
                              run, which <active>:r holds. That job's record is not
                              written when it finishes: its terminal state (completed), finish
                              time, start and attempts (1) are this entry, so a settle of a batch
                              writes one hash for all of its jobs instead of every record (the
                              HSET of each record was a fifth of a settle's instructions). An
                              entry lives as long as its record: whatever deletes a finished
                              record deletes its entry (retention, remove-job, purge, obliterate).

  Whether a lease holds a job is read from the lease: the job is one of its ids and has no '-<id>'
  field. A settle that is given a lease's ids exactly as it was given them (a `C` entry of
  settle-8.lua: a batch settled together, the common case) compares the two strings and deletes
  the lease, with no work per job. Finding the lease of a job without its token (getJob, listings)
  reads every lease; workers always give the token.

  Leases of the layout before this one (no field j: one job's id in field i, several in the list;
  the jobs each still held in a hash <active>:j of job id -> token) are still read, released and
  recovered; they are not counted in <active>:n.

  A token is `<sequence>.<store ms>.<jobs>`: when the lease started (leaseStart) and how many jobs
  it was given (leaseSize), so a settle that releases all of them at once deletes the lease without
  counting.

  A job's attempt counter (record field a) counts attempts that ended; the running one is a + 1,
  written when it ends (settle, recovery, rejection). All of these keys carry the queue's hash tag,
  as the active key does.
]]
--- @include "includes/chunked.lua"

local HASH_TABLE_PLACEHOLDER = 'placeholder: keeps this hash in the hash-table encoding (a value over 64 bytes)'

local function leaseKey(activeKey, token)
  return activeKey .. ':t:' .. token
end

local function leaseCountKey(activeKey)
  return activeKey .. ':n'
end

-- The job index of the layout before this one (read only for its leases).
local function leaseOldIndexKey(activeKey)
  return activeKey .. ':j'
end

-- When the lease `token` started (store ms, as a string), from the token itself.
local function leaseStart(token)
  return string.match(token, '^%d+%.(%d+)')
end

-- How many jobs the lease `token` was given.
local function leaseSize(token)
  return tonumber(string.match(token, '%.(%d+)$')) or 0
end

-- Leases `ids` under `token` until `deadline`. `joinedIds`: the ids joined by NUL bytes, when the
-- caller has joined them already (nil: joined here).
local function leaseOpen(activeKey, token, ids, deadline, workerId, joinedIds)
  local n = #ids
  local key = leaseKey(activeKey, token)
  local joined = joinedIds or table.concat(ids, '\0')
  if n > 1 and #joined > 0 then
    -- An id that holds a NUL byte sends the ids to a list instead. One plain find over the ids
    -- concatenated (memchr); a gsub counting the NUL bytes of the joined ids matched its pattern at
    -- every byte, 675 instructions a job in a reserve of 1,000 (bench/README.md).
    if string.find(table.concat(ids), '\0', 1, true) then
      callChunked('RPUSH', key .. ':i', ids)
      joined = ''
    end
  end
  if workerId ~= '' then
    redis.call('HSET', key, 'j', joined, 'w', workerId)
  else
    redis.call('HSET', key, 'j', joined)
  end
  redis.call('ZADD', activeKey, deadline, token)
  redis.call('INCRBY', leaseCountKey(activeKey), n)
end

-- The lease `token` as a table, one read: live (false: released, expired and recovered, or never
-- opened), size, released (jobs released so far), ids (the joined ids, or nil when they are a
-- list) and old (a lease of the layout before this one).
local function leaseRead(activeKey, token)
  local key = leaseKey(activeKey, token)
  local f = redis.call('HMGET', key, 'j', 'r', 'i')
  local lease = {
    key = key,
    token = token,
    size = leaseSize(token),
    released = -(tonumber(f[2]) or 0),
    live = true,
    old = false,
  }
  if f[1] then
    if f[1] ~= '' then
      lease.ids = f[1]
    end
  elseif f[3] then
    lease.old = true -- one job, of the layout before
    lease.ids = f[3]
  elseif redis.call('EXISTS', key .. ':i') == 1 then
    lease.old = true -- several, of the layout before
  else
    lease.live = false
  end
  return lease
end

-- Whether `id` is one of the ids `lease` was given (released or not).
local function leaseHas(lease, id)
  local ids = lease.ids
  if ids then
    if lease.size == 1 then
      return ids == id
    end
    -- Joined ids hold no NUL byte; an id that does is not one of them.
    if string.find(id, '\0', 1, true) then
      return false
    end
    local padded = lease.padded
    if not padded then
      padded = '\0' .. ids .. '\0'
      lease.padded = padded
    end
    return string.find(padded, '\0' .. id .. '\0', 1, true) ~= nil
  end
  local set = lease.set
  if not set then
    set = {}
    for _, v in ipairs(redis.call('LRANGE', lease.key .. ':i', 0, -1)) do
      set[v] = true
    end
    lease.set = set
  end
  return set[id] == true
end

-- Of `ids` (each one `lease` was given), which it released already: a table of booleans.
local function leaseReleasedOf(activeKey, lease, ids)
  local out = {}
  if #ids == 0 or not lease.live then
    return out
  end
  if lease.old then
    local tokens = redis.call('HMGET', leaseOldIndexKey(activeKey), unpack(ids))
    for i = 1, #ids do
      out[i] = tokens[i] ~= lease.token
    end
    return out
  end
  if lease.released == 0 then
    return out
  end
  local fields = {}
  for i = 1, #ids do
    fields[i] = '-' .. ids[i]
  end
  local marks = redis.call('HMGET', lease.key, unpack(fields))
  for i = 1, #ids do
    out[i] = marks[i] ~= false
  end
  return out
end

-- Whether the lease `token` holds `id`.
local function leaseHolds(activeKey, token, id)
  local lease = leaseRead(activeKey, token)
  return lease.live and leaseHas(lease, id) and not leaseReleasedOf(activeKey, lease, { id })[1]
end

-- Releases `ids` of `lease` (each held by it, listed once), or with `ids` nil every job it still
-- holds: the lease goes with its last job. Returns how many jobs the count of running jobs
-- (<active>:n) loses.
local function leaseDrop(activeKey, lease, ids)
  local k = ids and #ids or lease.size - lease.released
  if k == 0 then
    return 0
  end
  if lease.old and ids then
    callChunked('HDEL', leaseOldIndexKey(activeKey), ids)
  end
  if lease.released + k >= lease.size then
    redis.call('DEL', lease.key, lease.key .. ':i')
    redis.call('ZREM', activeKey, lease.token)
    lease.live = false
  else
    if not lease.old then
      local marks = {}
      for i = 1, k do
        marks[2 * i - 1] = '-' .. ids[i]
        marks[2 * i] = '1'
      end
      callChunked('HSET', lease.key, marks)
    end
    redis.call('HINCRBY', lease.key, 'r', -k)
    lease.released = lease.released + k
  end
  return lease.old and 0 or k
end

-- Takes `n` jobs off the count of running jobs.
local function leaseUncount(activeKey, n)
  if n > 0 then
    redis.call('DECRBY', leaseCountKey(activeKey), n)
  end
end

-- Releases `ids`, each held by the lease of the same index in `tokens`; a lease with no job left
-- is deleted.
local function leaseRelease(activeKey, ids, tokens)
  local perToken, order = {}, {}
  for i = 1, #ids do
    local t = tokens[i]
    local list = perToken[t]
    if not list then
      list = {}
      perToken[t] = list
      order[#order + 1] = t
    end
    list[#list + 1] = ids[i]
  end
  local uncounted = 0
  for _, t in ipairs(order) do
    uncounted = uncounted + leaseDrop(activeKey, leaseRead(activeKey, t), perToken[t])
  end
  leaseUncount(activeKey, uncounted)
end

-- The ids `token` still holds (the ids it was given, less the ones released), in order.
local function leaseHeld(activeKey, token)
  local lease = leaseRead(activeKey, token)
  if not lease.live then
    return {}
  end
  local ids
  if lease.ids then
    if lease.size == 1 then
      ids = { lease.ids }
    else
      ids = {}
      local p = 1
      while true do
        local q = string.find(lease.ids, '\0', p, true)
        if not q then
          ids[#ids + 1] = string.sub(lease.ids, p)
          break
        end
        ids[#ids + 1] = string.sub(lease.ids, p, q - 1)
        p = q + 1
      end
    end
  else
    ids = redis.call('LRANGE', lease.key .. ':i', 0, -1)
  end
  local released = leaseReleasedOf(activeKey, lease, ids)
  local held = {}
  for i, id in ipairs(ids) do
    if not released[i] then
      held[#held + 1] = id
    end
  end
  return held
end

-- The token of the lease holding `id`, or nil: every lease is read (a worker gives the token).
local function leaseFind(activeKey, id)
  for _, token in ipairs(redis.call('ZRANGE', activeKey, 0, -1)) do
    if leaseHolds(activeKey, token, id) then
      return token
    end
  end
  return nil
end

-- Number of running jobs.
local function leaseCount(activeKey)
  return math.max(0, tonumber(redis.call('GET', leaseCountKey(activeKey))) or 0)
end

local function finishedIndexKey(activeKey)
  return activeKey .. ':f'
end

-- The ranges of ranged runs (includes/finished.lua): a zset of `<first>|<n>|<f>|<g>` (the run's
-- first id, its size, finish time and lease start) scored by the first id.
local function finishedRangesKey(activeKey)
  return activeKey .. ':r'
end

-- The member of the ranged run of `n` jobs from id `first`, finished at `f`, leased at `g`.
local function finishedRangeMember(first, n, f, g)
  return first .. '|' .. n .. '|' .. f .. '|' .. g
end

-- The finish time and lease start (strings) of a job completed on a settle's fast path, from the
-- finished index or the range of its ranged run; nil for any other job.
local function finishedIndexOf(activeKey, id)
  local v = redis.call('HGET', finishedIndexKey(activeKey), id)
  if v then
    return string.match(v, '^([^|]*)|(.*)$')
  end
  -- Only an id written as a decimal number (no sign, no leading zero) can be in a range.
  if #id <= 15 and string.find(id, '^[1-9]%d*$') then
    local hit = redis.call('ZREVRANGEBYSCORE', finishedRangesKey(activeKey), id, '-inf', 'LIMIT', 0, 1)[1]
    if hit then
      local first, n, f, g = string.match(hit, '^(%d+)|(%d+)|(%d+)|(%d+)$')
      if first and tonumber(id) < tonumber(first) + tonumber(n) then
        return f, g
      end
    end
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
