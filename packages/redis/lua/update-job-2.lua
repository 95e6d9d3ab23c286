--[[
  update-job: records a running job's progress and appends log lines to it, only while the lease
  token given still holds the job (includes/leases.lua). Progress is field P (JSON); log
  lines are fields l<n> numbered from 1 by the count ln, and only the newest maxLogLines are kept (the
  field of the line that falls out is deleted), so a chatty handler keeps a bounded record. The
  report is published on the event stream as an entry of kind `progress` (fields p: progress JSON,
  l: the new lines as a JSON array), which readers of outcomes skip.

  KEYS:
    1  events  stream  job outcome events (and progress reports)
    2  active  zset    lease tokens by deadline (its `:j` hash: the lease holding each running job)

  ARGV:
    1  jobPrefix     prefix of job record keys
    2  eventsMaxLen  approximate cap of the event stream (0: no events)
    3  maxLogLines   log lines kept per job
    4  id            the job
    5  token         the lease token of the caller
    6  progress      progress JSON ('' = unchanged)
    7  linesJson     the new lines as a JSON array, for the event ('' = none)
    8  count         number of log lines that follow
    9… the log lines

  Returns:
    1 recorded, 0 the lease no longer holds the job (nothing written)

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/leases.lua"
--- @include "includes/compact.lua"

local eventsKey, activeKey = KEYS[1], KEYS[2]
local jobPrefix, id, token, progress, linesJson = ARGV[1], ARGV[4], ARGV[5], ARGV[6], ARGV[7]
local eventsMaxLen, maxLogLines, count = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[8])
if not (eventsMaxLen and maxLogLines and count) or #ARGV ~= 8 + count then
  return -2
end
local jobKey = jobPrefix .. id
if not leaseHolds(activeKey, token, id) then
  return 0
end
if progress ~= '' or count > 0 then
  recordOwn(jobPrefix, id) -- its record is written: a compact one becomes its own hash
end
if progress ~= '' then
  redis.call('HSET', jobKey, 'P', progress)
end
if count > 0 then
  local last = redis.call('HINCRBY', jobKey, 'ln', count)
  local first = last - count + 1
  local start = math.max(first, last - maxLogLines + 1)
  local fields = {}
  for n = start, last do
    fields[#fields + 1] = 'l' .. n
    fields[#fields + 1] = ARGV[8 + n - first + 1]
  end
  redis.call('HSET', jobKey, unpack(fields))
  -- Lines that fell out of the newest maxLogLines.
  local stale = {}
  for n = math.max(1, first - maxLogLines), last - maxLogLines do
    stale[#stale + 1] = 'l' .. n
  end
  if #stale > 0 then
    redis.call('HDEL', jobKey, unpack(stale))
  end
end
if eventsMaxLen > 0 then
  local entry = { 't', tostring(storeNow()), 'i', id, 'k', 'progress' }
  if progress ~= '' then
    entry[#entry + 1] = 'p'
    entry[#entry + 1] = progress
  end
  if linesJson ~= '' then
    entry[#entry + 1] = 'l'
    entry[#entry + 1] = linesJson
  end
  redis.call('XADD', eventsKey, 'MAXLEN', '~', eventsMaxLen, '*', unpack(entry))
end
return 1
