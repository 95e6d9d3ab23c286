--[[
  The slot guard (Redis Cluster only): the loader puts it first in every script of a store on a
  Cluster. It asks whether two keys of the script's slot exist; they never do. While the slot is
  stable that costs one read and changes nothing. While the slot moves to another master it is the
  first thing the script does:
  - on the master giving the slot away (MIGRATING), a key that is not there is looked for on the
    other master, so the read is refused ("Script attempted to access a non local key");
  - on the master taking it (IMPORTING, reached through an ASK redirection), a read of several keys
    not all there is refused the same way (TRYAGAIN inside the script).
  Either way the script stops before its first write: it changed nothing, and the store calls it
  again until the move completes (isClusterRefusal in src/scripts.ts). Without the guard a script
  could meet a job record already moved half-way through and stop after its first writes (a popped
  id lost). A slot's state cannot change while a script runs, so a script that passed the guard
  meets no moved key.
]]
redis.call('EXISTS', KEYS[1] .. ':~slot-guard:1', KEYS[1] .. ':~slot-guard:2')
