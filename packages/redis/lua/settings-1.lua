--[[
  settings: pauses, resumes or sets the concurrency override of a queue. Every change bumps the
  settings version and publishes "<version>|<paused 0/1>|<concurrency or empty>" on the settings
  channel, so every worker applies it; workers also poll the hash about once a second in case a
  message is missed. A resume also wakes idle workers.

  KEYS:
    1  settings  hash  queue settings (p paused, c concurrency, v version)

  ARGV:
    1  settingsChannel  channel the new settings are published on
    2  wakeChannel      channel told when jobs may be reserved again
    3  op               pause | resume | concurrency
    4  value            the concurrency ('' clears it; ignored otherwise)

  Returns:
    { version, paused (0 | 1), concurrency or nil }

  Errors:
    -2  malformed arguments (a client of another version)
]]

--- @include "includes/publish.lua"

local settingsKey = KEYS[1]
local settingsChannel, wakeChannel, op, value = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if #ARGV ~= 4 then
  return -2
end
local s = redis.call('HMGET', settingsKey, 'p', 'c', 'v')
local paused, concurrency, version = s[1] == '1', s[2], tonumber(s[3]) or 0
local changed = false
if op == 'pause' then
  if not paused then
    redis.call('HSET', settingsKey, 'p', '1')
    paused, changed = true, true
  end
elseif op == 'resume' then
  if paused then
    redis.call('HDEL', settingsKey, 'p')
    paused, changed = false, true
  end
  publish(wakeChannel, '')
elseif op == 'concurrency' then
  if value == '' then
    redis.call('HDEL', settingsKey, 'c')
    concurrency = false
  else
    if not tonumber(value) then
      return -2
    end
    redis.call('HSET', settingsKey, 'c', value)
    concurrency = value
  end
  changed = true
else
  return -2
end
if changed then
  version = redis.call('HINCRBY', settingsKey, 'v', 1)
  publish(settingsChannel, version .. '|' .. (paused and '1' or '0') .. '|' .. (concurrency or ''))
end
return { version, paused and 1 or 0, concurrency }
