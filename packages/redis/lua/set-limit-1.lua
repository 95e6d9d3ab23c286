--[[
  set-limit: sets the numbers of a rate limit store-wide (fields oA, oP of its log; see
  includes/limiter.lua): every reserve and move checks them from its next call, whatever numbers the
  worker asks with. allowed 0 clears them: each worker's own numbers apply again. The log keeps its
  entries, so the change never lets a window hold more than the numbers checked when each unit was
  placed. While set, the log does not expire.

  KEYS:
    1  limiter  hash  the rate-limit log

  ARGV:
    1  allowed   units allowed in any window (0: clear)
    2  periodMs  the window, without margin

  Returns:
    1

  Errors:
    -2  malformed arguments (a client of another version)
]]
local limiterKey = KEYS[1]
local allowed, periodMs = tonumber(ARGV[1]), tonumber(ARGV[2])
if #ARGV ~= 2 or not allowed or not periodMs or allowed < 0 or periodMs < 0 then
  return -2
end
if allowed == 0 then
  redis.call('HDEL', limiterKey, 'oA', 'oP')
  if redis.call('HLEN', limiterKey) == 0 then
    return 1
  end
  local h = redis.call('HMGET', limiterKey, 'W')
  redis.call('PEXPIRE', limiterKey, (tonumber(h[1]) or 0) + 1000)
  return 1
end
redis.call('HSET', limiterKey, 'oA', allowed, 'oP', periodMs)
redis.call('PERSIST', limiterKey)
return 1
