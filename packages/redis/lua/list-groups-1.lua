--[[
  list-groups: one page of a queue's groups that hold anything (a waiting job, a turn, a slot) or are
  paused, by name, with their counts (see includes/groups.lua).

  KEYS:
    1  settings  hash  queue settings (p = 1 while the whole queue is paused)

  ARGV:
    1  groupPrefix  prefix of the group keys (includes/groups.lua)
    2  offset       groups to skip
    3  limit        most groups answered

  Returns:
    { queuePaused (0 | 1), total, count, count × [group, ready, active, paused (0 | 1),
    limitedUntil (-1: not held back), weight (-1: none set)] } where ready counts the group's ready jobs (its turn and those
    waiting), active its slots held (jobs running, and retries keeping their slot through their
    backoff), limitedUntil the store time a group held back by its rate limit has room again and
    weight the weight set for it (includes/groups.lua, <gp>wt);
    total is the number of groups listed over all pages.

  Errors:
    -2  malformed arguments (a client of another version)
]]
local settingsKey = KEYS[1]
local groupPrefix = ARGV[1]
local offset, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if #ARGV ~= 3 or not offset or not limit or offset < 0 or limit < 0 then
  return -2
end

local index = groupPrefix .. 'i'
local reply = { redis.call('HGET', settingsKey, 'p') == '1' and 1 or 0, redis.call('ZCARD', index), 0 }
if limit == 0 then
  return reply
end
for _, g in ipairs(redis.call('ZRANGE', index, offset, offset + limit - 1)) do
  local s = redis.call('HMGET', groupPrefix .. 's:' .. g, 'r', 't', 'l')
  local ready = redis.call('ZCARD', groupPrefix .. 'w:' .. g) + (s[2] and 1 or 0)
  reply[#reply + 1] = g
  reply[#reply + 1] = ready
  reply[#reply + 1] = math.max(0, tonumber(s[1]) or 0)
  reply[#reply + 1] = redis.call('SISMEMBER', groupPrefix .. 'p', g)
  reply[#reply + 1] = tonumber(s[3]) or -1
  reply[#reply + 1] = tonumber(redis.call('HGET', groupPrefix .. 'wt', g)) or -1
  reply[3] = reply[3] + 1
end
return reply
