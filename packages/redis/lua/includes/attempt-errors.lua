--[[
  Records a failed attempt on the job record without decoding anything: field `en` counts the errors,
  field `e<N>` holds the N-th as JSON (the worker's ErrorInfo object with `attempt` and `at` added).
  The record stays bounded: the first error and the latest maxErrors - 1 are kept (maxErrors is
  MAX_ATTEMPT_ERRORS of @sluice/core, given by the client).
]]
local function recordError(jobKey, errorJson, attempt, nowS, maxErrors)
  local n = redis.call('HINCRBY', jobKey, 'en', 1)
  local tail = '"attempt":' .. attempt .. ',"at":' .. nowS .. '}'
  local entry
  if errorJson == nil or errorJson == '' or errorJson == '{}' then
    entry = '{' .. tail
  else
    entry = string.sub(errorJson, 1, -2) .. ',' .. tail
  end
  redis.call('HSET', jobKey, 'e' .. n, entry)
  if n > maxErrors then
    redis.call('HDEL', jobKey, 'e' .. (n - maxErrors + 1))
  end
end
