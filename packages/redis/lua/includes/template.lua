--[[
  Texts the client gives as templates (StoreText of @sluice/core): `{attempt}` and `{maxAttempts}`
  are replaced by the numbers; the rest is kept as given.
]]
local function fillTemplate(template, attempt, maxAttempts)
  local text = string.gsub(template, '{attempt}', tostring(attempt))
  text = string.gsub(text, '{maxAttempts}', tostring(maxAttempts))
  return text
end
