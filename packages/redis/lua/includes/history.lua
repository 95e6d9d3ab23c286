--[[
  Per-minute completed/failed counters: one small hash per minute (`<historyPrefix><minuteStartMs>`,
  fields c and f) that expires the configured history span after its first count (its expiry is set
  when a field is created, not at every count: one command less per settle).
]]
local function bumpHistory(historyPrefix, ttlMs, now, completed, failed)
  if completed == 0 and failed == 0 then
    return
  end
  -- '%d': a number joined to a string as is is printed with %.14g, several times slower.
  local key = historyPrefix .. string.format('%d', math.floor(now / 60000) * 60000)
  local created = false
  if completed > 0 and redis.call('HINCRBY', key, 'c', completed) == completed then
    created = true
  end
  if failed > 0 and redis.call('HINCRBY', key, 'f', failed) == failed then
    created = true
  end
  if created then
    redis.call('PEXPIRE', key, ttlMs)
  end
end
