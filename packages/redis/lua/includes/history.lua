--[[
  Per-minute completed/failed counters: one small hash per minute (`<historyPrefix><minuteStartMs>`,
  fields c and f) that expires after the configured history span.
]]
local function bumpHistory(historyPrefix, ttlMs, now, completed, failed)
  if completed == 0 and failed == 0 then
    return
  end
  local key = historyPrefix .. (math.floor(now / 60000) * 60000)
  if completed > 0 then
    redis.call('HINCRBY', key, 'c', completed)
  end
  if failed > 0 then
    redis.call('HINCRBY', key, 'f', failed)
  end
  redis.call('PEXPIRE', key, ttlMs)
end
