--[[
  `cmd key item1 item2 ...` for long item lists, in chunks that keep `unpack` below Lua's C-stack
  limit (about 8,000 values). Chunks hold an even number of items so score/member pairs stay whole.
  Returns the sum of the chunks' answers (every command it is used with answers an integer).
]]
local function callChunked(cmd, key, items)
  local n = #items
  local i = 1
  local total = 0
  while i <= n do
    local j = math.min(i + 3999, n)
    total = total + redis.call(cmd, key, unpack(items, i, j))
    i = j + 1
  end
  return total
end
