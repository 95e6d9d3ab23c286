--[[
  grant-limit: records units of a rate limit without jobs attached, for work reserved by other
  calls: the partitions of a partitioned queue live in other slots than the limit's log, so a worker
  takes the units here first (on the log's slot), then as many jobs from the partitions, and gives
  the units no job took back with a call granting none (refunds, removed before any new units are
  placed).
  The units are placed as a reserve places them (see reserve-6.lua: leadMs, aheadMs or as far as
  any caller looked lately, spread a ms apart when asked, every further limit at the same slots).

  KEYS:
    1  limiter  hash  the rate-limit log (see includes/limiter.lua)
    2… the logs of further limits (ARGV 8)

  ARGV:
    1  allowed   units allowed in any window
    2  periodMs  the window
    3  marginMs  the part of periodMs that is a margin (kept under store-wide numbers)
    4  units     units wanted (0: only refund)
    5  leadMs    a unit's slot is leadMs or more after now
    6  aheadMs   and aheadMs or less after now (or as far as any caller looked lately)
    7  spread    1: at most the tightest limit's rate per ms of the units at one ms
    8  more      number of further limits (0…); then per limit: allowed, periodMs, marginMs
    9+3·more  refunds  number of refunds (0…); then per refund: at, units (removed from every log)

  Returns:
    { now, retryAfterMs (-1: every unit wanted was granted), slotCount, slotCount × [at, units] }

  Errors:
    -2  malformed arguments (a client of another version)
]]
--- @include "includes/time.lua"
--- @include "includes/limiter.lua"

local allowed, periodMs, marginMs = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local units, leadMs, aheadMs = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local spread, more = ARGV[7] == '1', tonumber(ARGV[8])
if not more or #KEYS ~= 1 + more or not (allowed and periodMs and marginMs and units and leadMs and aheadMs) or units < 0 then
  return -2
end
local refundBase = 9 + 3 * more
local refunds = tonumber(ARGV[refundBase])
if not refunds or #ARGV ~= 8 + 3 * more + 1 + 2 * refunds then
  return -2
end
local now = storeNow()
local Ls = limiterOpenAll(KEYS[1], allowed, periodMs, marginMs, 1, 8, more, now)
if not Ls then
  return -2
end
for i = 1, refunds do
  local at, n = tonumber(ARGV[refundBase + 2 * i - 1]), tonumber(ARGV[refundBase + 2 * i])
  if not at or not n or n < 1 then
    return -2
  end
  for _, L in ipairs(Ls) do
    limiterRefund(L, at, math.min(n, L.allowed))
  end
end
local reply = { now, -1, 0 }
if units > 0 then
  local reach = limiterAhead(Ls[1], math.max(leadMs, aheadMs))
  local perMs = nil
  if spread then
    perMs = limiterPerMs(Ls)
  end
  local plan, granted, retry = limiterPlan(Ls, units, nil, now + leadMs, now + reach, false, perMs)
  local recorded = limiterCommit(Ls, plan, granted, nil)
  if granted < units then
    reply[2] = retry
  end
  reply[3] = #recorded
  for i, r in ipairs(recorded) do
    reply[2 + 2 * i] = r[1]
    reply[3 + 2 * i] = r[2]
  end
end
for _, L in ipairs(Ls) do
  limiterSave(L)
end
return reply
