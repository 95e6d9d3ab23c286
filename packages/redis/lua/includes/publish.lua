--[[
  Publishes `message` on `channel`. On one server, PUBLISH. On a Redis Cluster, SPUBLISH (sharded
  pub/sub): the message goes to the shard that owns the channel's slot instead of to every node of
  the Cluster. The loader swaps the command in when it loads the scripts of a store on a Cluster
  (`loadScripts` in src/scripts.ts); a script's channels carry the hash tag of the keys it is given,
  so they live in its slot.
]]
local PUBLISH_COMMAND = 'PUBLISH'
local function publish(channel, message)
  redis.call(PUBLISH_COMMAND, channel, message)
end
