--[[
  pause-group: pauses or resumes one group of a queue (see includes/groups.lua). While a group is
  paused it gets no turn, so none of its jobs is leased; its running jobs go on and settle as usual,
  and its turn, if one was out, goes back to the front of the group. Resuming gives the group its
  turn again and tells idle workers. A paused group stays listed (list-groups) while paused, even
  when it holds no job.

  KEYS:
    1  priorities  zset  priorities that have ready jobs

  ARGV:
    1  readyPrefix  prefix of the per-priority ready lists
    2  groupPrefix  prefix of the group keys (includes/groups.lua)
    3  wakeChannel  channel told when the group's jobs may be leased again
    4  group        the group
    5  paused       1 to pause, 0 to resume

  Returns:
    1 changed, 0 it already was so

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/groups.lua"
--- @include "includes/publish.lua"

local prioritiesKey = KEYS[1]
if #ARGV ~= 5 or (ARGV[5] ~= '1' and ARGV[5] ~= '0') or ARGV[4] == '' then
  return -2
end
local readyPrefix, groupPrefix, wakeChannel, group, paused = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5]

if paused == '1' then
  if redis.call('SADD', groupPrefix .. 'p', group) == 0 then
    return 0
  end
  redis.call('ZADD', groupPrefix .. 'i', 'NX', 0, group)
  groupRetract(groupPrefix, group, readyPrefix, prioritiesKey)
  return 1
end
if redis.call('SREM', groupPrefix .. 'p', group) == 0 then
  return 0
end
if groupRelease(groupPrefix, group, readyPrefix, prioritiesKey) then
  publish(wakeChannel, '')
end
groupTidy(groupPrefix, group)
return 1
