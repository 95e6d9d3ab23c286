--[[
  set-config: stores a queue's configuration (JSON, read by every process) and, next to the settings,
  the compact form of its retention that settle reads.

  KEYS:
    1  config    string  the queue configuration as JSON
    2  settings  hash    queue settings (r = retention)

  ARGV:
    1  json       the configuration
    2  retention  '' (the default) | n | c<count> | a<ms>

  Returns:
    1

  Errors:
    -2  malformed arguments (a client of another version)
]]
local configKey, settingsKey = KEYS[1], KEYS[2]
if #ARGV ~= 2 then
  return -2
end
redis.call('SET', configKey, ARGV[1])
if ARGV[2] == '' then
  redis.call('HDEL', settingsKey, 'r')
else
  redis.call('HSET', settingsKey, 'r', ARGV[2])
end
return 1
