--[[
  How a leased job's record is answered in the reserve's reply: its id, the number n of its field and
  value strings as HGETALL gave them, then those n strings joined by NUL bytes into one (one reply
  value per job instead of n). The client splits it and finds n strings; a record holding a NUL byte
  (Sluice writes none: payloads are JSON text, where a NUL is escaped; another writer may) splits
  into more, and the client reads that record again by itself (HGETALL). Looking for NUL bytes here
  took a second join of every record (about 2,000 instructions a job in batches of 100) for records
  Sluice never writes. `out` gets the values from index r + 1 on; returns the index of the last one
  written.
]]
local function leasedAppend(out, r, id, f)
  out[r + 1] = id
  out[r + 2] = #f
  out[r + 3] = table.concat(f, '\0')
  return r + 3
end
