--[[
  Compact records. A job added with every option at its default (an automatic id, no name,
  priority, delay, attempts, timeout, unique key, retention, cost, trace or group) has no hash of its
  own: its record is one field of the queue's compact hash, whose key is the job prefix itself
  (`<jobPrefix>`, which no job's key is: ids are never empty). The field is the id, the value the
  record's two strings as a reserve answers them, `c<NUL><created-at><NUL>d<NUL><data JSON>`, so an
  add writes one hash for a whole call and a reserve reads the records of a whole pop in one HMGET
  and answers each value as it is, without a Lua table per record.

  A job's record is in exactly one place: its own hash `<jobPrefix><id>`, or its compact field. A
  script that writes a field of a record, or reads fields other than created-at, first gives the job
  a hash of its own (recordOwn): the compact field is moved into it. A completion on a settle's fast
  path writes no record (includes/leases.lua, the finished index), so a job that runs once and
  completes with no result keeps its compact field until retention deletes it. Whatever deletes a
  record deletes both places (recordDelete).
]]

-- The created-at and data of a compact value, or nil and the value itself when it is not one (a
-- value written by something other than Sluice: its job's record becomes `d` = that value alone,
-- which the worker's check dead-letters as malformed).
local function compactParse(value)
  local c, d = string.match(value, '^c%z(%d+)%zd%z(.*)$')
  return c, d
end

-- The value of a compact record of created-at `nowS` and data `data`.
local function compactValue(nowS, data)
  return 'c\0' .. nowS .. '\0d\0' .. data
end

-- Whether job `id` has a record, in either place.
local function recordExists(jobPrefix, id)
  return redis.call('EXISTS', jobPrefix .. id) == 1 or redis.call('HEXISTS', jobPrefix, id) == 1
end

-- Gives job `id` a hash of its own if its record is compact (moves the compact field there).
-- Returns whether the job has a record at all.
local function recordOwn(jobPrefix, id)
  local value = redis.call('HGET', jobPrefix, id)
  if not value then
    return redis.call('EXISTS', jobPrefix .. id) == 1
  end
  redis.call('HDEL', jobPrefix, id)
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
    local value = redis.call('HGET', jobPrefix, id)
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
    local value = redis.call('HGET', jobPrefix, id)
    if value then
      c = compactParse(value)
    end
  end
  return c
end

-- Deletes the records of `ids` in both places; returns how many there were. The compact ones first:
-- when every id had one (most trims), there is no hash of its own to delete. At most 1,000 ids a
-- command (unpack's limit).
local function recordDelete(jobPrefix, ids)
  local n = 0
  for i = 1, #ids, 1000 do
    local j = math.min(i + 999, #ids)
    local compact = redis.call('HDEL', jobPrefix, unpack(ids, i, j))
    n = n + compact
    if compact < j - i + 1 then
      local keys = {}
      for k = i, j do
        keys[k - i + 1] = jobPrefix .. ids[k]
      end
      n = n + redis.call('DEL', unpack(keys))
    end
  end
  return n
end
