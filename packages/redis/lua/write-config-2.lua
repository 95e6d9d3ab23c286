--[[
  write-config: stores a queue's configuration (JSON, read by every process) and, next to the
  settings, the compact forms of its retentions that settle, recover and stats read.

  In mode `set` the configuration is replaced whatever it was (setQueueConfig). In mode `swap` it is
  replaced only if the stored JSON is still `expected` (updateQueueConfig: the client read it,
  applied its patch and writes the result; when another process changed the configuration in
  between, nothing is written and the client reads and patches again), so concurrent patches of
  different fields never lose each other.

  KEYS:
    1  config    string  the queue configuration as JSON
    2  settings  hash    queue settings (r = retention, rd = dead retention)

  ARGV:
    1  mode           set | swap
    2  expected       swap: the JSON the patch was applied to ('' = no configuration stored)
    3  json           the configuration
    4  retention      '' (the default) | n | k | c<count> | a<ms> | c<count>a<ms>
    5  deadRetention  '' (the default) | same forms

  Returns:
    1 written, 0 not written (swap: the configuration changed since it was read)

  Errors:
    -2  malformed arguments (a client of another version)
]]
local configKey, settingsKey = KEYS[1], KEYS[2]
local mode, expected, json, retention, deadRetention = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]
if #ARGV ~= 5 or (mode ~= 'set' and mode ~= 'swap') then
  return -2
end
if mode == 'swap' and (redis.call('GET', configKey) or '') ~= expected then
  return 0
end
redis.call('SET', configKey, json)
local fields = { { 'r', retention }, { 'rd', deadRetention } }
for _, pair in ipairs(fields) do
  if pair[2] == '' then
    redis.call('HDEL', settingsKey, pair[1])
  else
    redis.call('HSET', settingsKey, pair[1], pair[2])
  end
end
return 1
