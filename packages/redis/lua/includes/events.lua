--[[
  Job outcome events on the queue's capped stream. One stream entry carries every outcome of one
  script call (a settle of 500 jobs is one XADD, not 500): fields `t` (store time) once, then per job
  `i` id, `k` kind and optionally `r` result JSON, `e` error JSON, `x` reason; or, for a job completed
  with no result, `c` id alone (kind completed: two values instead of four); or, for the jobs of a
  settle's `C` entry all completed with no result, `C` and their ids joined by NUL bytes (two values
  for all of them: such ids hold no NUL). A kind is an outcome
  name (`OutcomeKind` in @sluice/core): completed, retrying, dead, snoozed or cancelled (earlier
  versions wrote letters; the client still reads them). The stream is capped with `MAXLEN ~ maxLen`
  entries; 0 disables events.
]]
local function eventBatch()
  return {}
end

-- Adds one outcome; `extra` is a flat list of optional (field, value) pairs, empty values skipped.
-- Adds a job's outcome: its id and kind, then up to two field / value pairs (an empty or missing
-- value is left out).
local function eventAdd(batch, id, kind, f1, v1, f2, v2)
  local n = #batch
  batch[n + 1] = 'i'
  batch[n + 2] = id
  batch[n + 3] = 'k'
  batch[n + 4] = kind
  n = n + 4
  if v1 and v1 ~= '' then
    batch[n + 1] = f1
    batch[n + 2] = v1
    n = n + 2
  end
  if v2 and v2 ~= '' then
    batch[n + 1] = f2
    batch[n + 2] = v2
  end
end

-- `maxLenS`, if given, is maxLen as the caller received it (a string: redis.call prints a number
-- with %.17g, which costs more than a small command).
local function eventFlush(eventsKey, maxLen, batch, nowS, maxLenS)
  if maxLen <= 0 or #batch == 0 then
    return
  end
  maxLenS = maxLenS or maxLen
  -- Entries of at most ~4,000 values (unpack limit), each split at a job boundary (an 'i', 'c' or
  -- 'C' field).
  local start = 1
  while start <= #batch do
    local stop = math.min(#batch, start + 3999)
    if stop < #batch then
      while stop > start and batch[stop + 1] ~= 'i' and batch[stop + 1] ~= 'c' and batch[stop + 1] ~= 'C' do
        stop = stop - 1
      end
    end
    redis.call('XADD', eventsKey, 'MAXLEN', '~', maxLenS, '*', 't', nowS, unpack(batch, start, stop))
    start = stop + 1
  end
end
