--[[
  Compact records. A job added with every option at its default (an automatic id, no name,
  priority, delay, attempts, timeout, unique key, retention, cost, trace or group) has no hash of its
  own: its record is one field of a compact bucket, `<compactPrefix><n>`, which holds the jobs whose
  automatic ids are 10,000 × n to 10,000 × n + 9,999 (the id less its last four digits). The compact
  prefix is the job prefix with its `j:`
  replaced by `c:` (src/keys.ts). The field is the id, the value the record's two strings as a reserve
  answers them, `c<NUL><created-at><NUL>d<NUL><data JSON>`, so an add writes one hash per bucket for a
  whole call, a reserve reads a whole pop's records with one HMGET per bucket and answers each value
  as it is, without a Lua table per record. No bucket grows beyond 10,000 jobs (about 1 MB for
  small payloads), so a Cluster slot moves a large backlog in keys of bounded size. (Buckets of 128
  or 32, kept in Redis's listpack encoding, took half the memory per queued job but a quarter to a
  third more instructions per processed job: bench/README.md.)

  A job's record is in exactly one place: its own hash `<jobPrefix><id>`, or its compact field. A
  script that writes a field of a record, or reads fields other than created-at, first gives the job
  a hash of its own (recordOwn): the compact field is moved into it. A completion on a settle's fast
  path writes no record (includes/leases.lua, the finished index), so a job that runs once and
  completes with no result keeps its compact field until retention deletes it. Whatever deletes a
  record deletes both places (recordDelete).
]]

-- The compact prefix of a queue whose job prefix is `jobPrefix`.
local function compactPrefixOf(jobPrefix)
  return string.sub(jobPrefix, 1, -3) .. 'c:'
end

-- The bucket of job `id`: the id less its last four digits ('' for ids of at most four characters),
-- so automatic ids 10,000 × n to 10,000 × n + 9,999 share the bucket `n`. Only automatic ids have
-- compact records; any other id maps to a bucket holding no field of that name (or to no key at
-- all), so looking it up there finds nothing, which is the truth.
local function compactBucket(id)
  if #id > 4 then
    return string.sub(id, 1, -5)
  end
  return ''
end

-- The key of job `id`'s compact bucket.
local function compactKeyOf(jobPrefix, id)
  return compactPrefixOf(jobPrefix) .. compactBucket(id)
end

-- The created-at and data of a compact value, or nil when it is not one (a value written by
-- something other than Sluice: its job's record becomes `d` = that value alone, which the worker's
-- check dead-letters as malformed).
local function compactParse(value)
  local c, d = string.match(value, '^c%z(%d+)%zd%z(.*)$')
  return c, d
end

-- The value of a compact record of created-at `nowS` and data `data`.
local function compactValue(nowS, data)
  return 'c\0' .. nowS .. '\0d\0' .. data
end

-- Writes compact records: `pairs_` holds id, value pairs in increasing id order (a run of one bucket
-- after another), one HSET per bucket.
local function compactWrite(jobPrefix, pairs_)
  local prefix = compactPrefixOf(jobPrefix)
  local i, n = 1, #pairs_
  while i <= n do
    local b = compactBucket(pairs_[i])
    local j = i
    while j + 2 <= n and compactBucket(pairs_[j + 2]) == b do
      j = j + 2
    end
    local key = prefix .. b
    for k = i, j, 4000 do
      redis.call('HSET', key, unpack(pairs_, k, math.min(k + 3999, j + 1)))
    end
    i = j + 2
  end
end

-- The compact values of `ids` (false where none), in order: one HMGET per run of one bucket.
local function compactReadRuns(prefix, ids)
  local values = {}
  local i, n = 1, #ids
  while i <= n do
    local b = compactBucket(ids[i])
    local j = i
    while j < n and j - i < 3999 and compactBucket(ids[j + 1]) == b do
      j = j + 1
    end
    local got = redis.call('HMGET', prefix .. b, unpack(ids, i, j))
    for k = i, j do
      values[k] = got[k - i + 1]
    end
    i = j + 1
  end
  return values
end

-- The compact values of `ids` (false where none), in order. Most pops are of one bucket: every id
-- is read in the first id's bucket (an id of another bucket, or with no compact record, is no
-- field of it), then the ones of other buckets not found there, by runs (compactReadRuns).
local function compactRead(jobPrefix, ids)
  local prefix = compactPrefixOf(jobPrefix)
  local n = #ids
  if n == 0 or n > 4000 then
    return compactReadRuns(prefix, ids)
  end
  local first = compactBucket(ids[1])
  local values = redis.call('HMGET', prefix .. first, unpack(ids))
  local others, at = {}, {}
  for k = 1, n do
    if not values[k] and compactBucket(ids[k]) ~= first then
      others[#others + 1] = ids[k]
      at[#at + 1] = k
    end
  end
  if #others > 0 then
    for k, v in ipairs(compactReadRuns(prefix, others)) do
      values[at[k]] = v
    end
  end
  return values
end

-- The compact value of job `id`, or nil.
local function compactGet(jobPrefix, id)
  return redis.call('HGET', compactKeyOf(jobPrefix, id), id) or nil
end

-- Whether job `id` has a record, in either place.
local function recordExists(jobPrefix, id)
  if redis.call('EXISTS', jobPrefix .. id) == 1 then
    return true
  end
  return redis.call('HEXISTS', compactKeyOf(jobPrefix, id), id) == 1
end

-- Gives job `id` a hash of its own if its record is compact (moves the compact field there).
-- Returns whether the job has a record at all.
local function recordOwn(jobPrefix, id)
  local key = compactKeyOf(jobPrefix, id)
  local value = redis.call('HGET', key, id)
  if not value then
    return redis.call('EXISTS', jobPrefix .. id) == 1
  end
  redis.call('HDEL', key, id)
  local c, d = compactParse(value)
  if c then
    redis.call('HSET', jobPrefix .. id, 'c', c, 'd', d)
  else
    redis.call('HSET', jobPrefix .. id, 'd', value)
  end
  return true
end

-- The record of job `id` as HGETALL answers a hash (an empty table: none), from either place.
local function recordFields(jobPrefix, id)
  local fields = redis.call('HGETALL', jobPrefix .. id)
  if #fields == 0 then
    local value = compactGet(jobPrefix, id)
    if value then
      local c, d = compactParse(value)
      if c then
        fields = { 'c', c, 'd', d }
      else
        fields = { 'd', value }
      end
    end
  end
  return fields
end

-- The created-at of job `id`'s record (a string), or nil where it has none, from either place.
local function recordCreatedAt(jobPrefix, id)
  local c = redis.call('HGET', jobPrefix .. id, 'c')
  if not c then
    local value = compactGet(jobPrefix, id)
    if value then
      c = compactParse(value)
    end
  end
  return c
end

-- Deletes the records of `ids` in both places; returns how many there were. The compact ones first
-- (one HDEL per bucket): when every id had one (most trims), there is no hash of its own to delete.
-- At most 1,000 keys a DEL (unpack's limit).
local function recordDelete(jobPrefix, ids)
  local prefix = compactPrefixOf(jobPrefix)
  local nIds = #ids
  if nIds == 0 then
    return 0
  end
  -- Most trims are of compact records of one bucket: all of them deleted there first. Otherwise
  -- the ids are grouped by bucket (the ones deleted already are no fields any more, so none is
  -- counted twice).
  local n = 0
  if nIds <= 4000 then
    n = redis.call('HDEL', prefix .. compactBucket(ids[1]), unpack(ids))
    if n == nIds then
      return n
    end
  end
  local byBucket, order = {}, {}
  for _, id in ipairs(ids) do
    local b = compactBucket(id)
    local list = byBucket[b]
    if not list then
      list = {}
      byBucket[b] = list
      order[#order + 1] = b
    end
    list[#list + 1] = id
  end
  for _, b in ipairs(order) do
    local list = byBucket[b]
    for i = 1, #list, 4000 do
      n = n + redis.call('HDEL', prefix .. b, unpack(list, i, math.min(i + 3999, #list)))
    end
  end
  if n < #ids then
    for i = 1, #ids, 1000 do
      local j = math.min(i + 999, #ids)
      local keys = {}
      for k = i, j do
        keys[k - i + 1] = jobPrefix .. ids[k]
      end
      n = n + redis.call('DEL', unpack(keys))
    end
  end
  return n
end
