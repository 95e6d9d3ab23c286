--[[
  Appends one job record to a reply for inspection: id, state (w s a c d x), lease deadline (nil
  unless running), the number of hash values that follow, then the record's fields and values.
]]
local function appendRecord(reply, jobKey, id, state, deadline)
  local fields = redis.call('HGETALL', jobKey)
  reply[#reply + 1] = id
  reply[#reply + 1] = state
  reply[#reply + 1] = deadline or false
  reply[#reply + 1] = #fields
  for i = 1, #fields do
    reply[#reply + 1] = fields[i]
  end
end
