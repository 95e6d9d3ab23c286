--[[
  An exact sliding-log rate limiter in one hash: never more than `allowed` units in any window of
  `period` ms. The same algorithm as SlidingWindowLimiter in @sluice/core, on the store's clock.

  A unit recorded at time t occupies every window containing t, i.e. until t + period. Units are
  recorded at slots: the earliest time at or after a given one (and not before the newest entry, so
  the log stays in time order) at which the window has room. A slot may lie ahead of now when the
  window is full: a worker then starts the unit at that time. Units of one slot share one log entry.
  Fields: A allowed and P window last checked, W the longest window in use (entries are kept that
  long), oA/oP store-wide numbers (set-limit), h index of the oldest entry, t index after the
  newest, n units in the log, b the time before which no unit is placed (a
  provider asked to slow down; see pause-limit), M the widest margin a caller asked for and Mt when
  (see limiterOpen), H the furthest ahead a caller placed slots and Ht when (see limiterAhead), k
  and kw where the last plan's scan stopped (an index, and the units of the entries from h up to
  it: see limiterPlan), and entries "<index>" = "<time>:<units>". The key
  expires one period after its newest entry or the end of its pause, whichever is later.
]]
local function limiterEntry(key, index)
  local e = redis.call('HGET', key, index)
  if not e then
    return nil, 0
  end
  local sep = string.find(e, ':', 1, true)
  return tonumber(string.sub(e, 1, sep - 1)), tonumber(string.sub(e, sep + 1))
end

-- How long the widest margin a caller asked for holds for every caller, beyond the limit's window
-- (MARGIN_HOLD_MS in @sluice/core's limiter).
local LIMITER_MARGIN_HOLD_MS = 10000

--[[
  Loads the log with the numbers to check: the store-wide ones (fields oA, oP, set by set-limit;
  the window is oP + margin) if set, else the caller's (allowed, window). Callers with other numbers
  (a rolling deploy) each check their own; the log keeps entries for the longest window in use since
  it was last empty (field W), and evicts older ones. `margin` is the part of `window` the caller
  keeps for how late its work runs against its slots; the window is widened to the widest margin
  any caller asked for in the last LIMITER_MARGIN_HOLD_MS plus the window (fields M, Mt), so a unit placed by a
  caller whose work runs early still keeps clear of units of callers whose work runs late.
]]
local function limiterOpen(key, allowed, window, margin, now)
  local s = redis.call('HMGET', key, 'h', 't', 'n', 'b', 'oA', 'oP', 'W', 'M', 'Mt', 'H', 'Ht', 'k', 'kw')
  local oA, oP = tonumber(s[5]), tonumber(s[6])
  -- A margin is held for LIMITER_MARGIN_HOLD_MS plus the limit's own window (oP, or the caller's
  -- without its margin): a unit may start as late as its caller's margin, so every unit placed
  -- within a window of it is placed with that margin or a wider one.
  local base = oP or (window - margin)
  local heldMargin, heldAt = tonumber(s[8]) or 0, tonumber(s[9])
  if margin >= heldMargin or not heldAt or now - heldAt > LIMITER_MARGIN_HOLD_MS + base then
    heldMargin, heldAt = margin, now
  end
  local widest = math.max(margin, heldMargin)
  if oA and oP then
    allowed = oA
    window = oP + widest
  else
    window = window - margin + widest
  end
  local L = {
    key = key,
    allowed = allowed,
    period = window,
    keep = math.max(window, tonumber(s[7]) or 0),
    override = oA ~= nil,
    head = tonumber(s[1]) or 0,
    tail = tonumber(s[2]) or 0,
    used = tonumber(s[3]) or 0,
    now = now,
    heldMargin = heldMargin,
    heldAt = heldAt,
    heldAhead = tonumber(s[10]),
    heldAheadAt = tonumber(s[11]),
    pausedUntil = tonumber(s[4]) or 0,
    cache = {},
    hint = tonumber(s[12]),
    hintUnits = tonumber(s[13]) or 0,
  }
  if not L.hint or L.hint < L.head or L.hint > L.tail then
    L.hint, L.hintUnits = L.head, 0
  end
  local cutoff = now - L.keep
  while L.head < L.tail do
    local t, c = limiterEntry(key, L.head)
    if t and t > cutoff then
      break
    end
    redis.call('HDEL', key, L.head)
    L.used = L.used - c
    if L.head < L.hint then
      L.hintUnits = L.hintUnits - c
    end
    L.head = L.head + 1
  end
  if L.hint < L.head then
    L.hint, L.hintUnits = L.head, 0
  end
  if L.head >= L.tail then
    L.used = 0
    L.newest = nil
    L.keep = window
    L.hint, L.hintUnits = L.head, 0
  else
    L.newest = limiterEntry(key, L.tail - 1)
  end
  return L
end

--[[
  Opens the log at `key` (see limiterOpen) and the logs of `more` further limits: KEYS[keyBase + i],
  with allowed, periodMs and marginMs from ARGV[argBase + 3(i - 1) + 1…3]. Returns the logs, or nil
  if a further limit's numbers are malformed.
]]
local function limiterOpenAll(key, allowed, window, margin, keyBase, argBase, more, now)
  local Ls = { limiterOpen(key, allowed, window, margin, now) }
  for i = 1, more do
    local b = argBase + 3 * (i - 1)
    local a, p, m = tonumber(ARGV[b + 1]), tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
    if not a or not p or not m then
      return nil
    end
    Ls[#Ls + 1] = limiterOpen(KEYS[keyBase + i], a, p, m, now)
  end
  return Ls
end

-- Entry i of the log (cached for one script run).
local function limiterAt(L, i)
  local e = L.cache[i]
  if not e then
    local t, c = limiterEntry(L.key, i)
    e = { t or 0, c or 0 }
    L.cache[i] = e
  end
  return e[1], e[2]
end

--[[
  Where `count` items would go from `earliest` on, none later than `latest`, without recording them,
  checking every limit log in `Ls` (a pipeline's limits: an item goes where all of them have room, at
  the same slot). Item i takes sizes[i] units (`sizes` nil: one unit each) and all its units go to
  one slot. Returns slots { {at, items, units}, ... } in time order, the items granted, and (when
  short) how much later `latest` would have to be for one more item, else -1. With `together`, all
  items share one slot or none is granted. An item larger than a limit's `allowed` is never placed
  (callers clamp sizes). With `perMs` (not together), a slot takes at most that many units (an item
  bigger than that alone) and the next slot is a millisecond or more later: a reserve's units do not
  all fall due at one instant, where the worker would have to start them all in the same moment.
]]
local function limiterPlan(Ls, count, sizes, earliest, latest, together, perMs)
  local slots = {}
  local function sizeOf(i)
    if sizes then
      return sizes[i]
    end
    return 1
  end
  local total = 0
  if together then
    for i = 1, count do
      total = total + sizeOf(i)
    end
  end
  local at = earliest
  for _, L in ipairs(Ls) do
    if together and total > L.allowed then
      return slots, 0, L.period
    end
    if L.pausedUntil > at then
      at = L.pausedUntil
    end
    if L.newest and L.newest > at then
      at = L.newest
    end
  end
  -- The scan of each log starts where the last one stopped (fields k, kw) if every entry before
  -- that is out of this plan's first window, else at its oldest entry.
  for _, L in ipairs(Ls) do
    L.logged = L.tail
    L.k, L.win, L.skipped = L.head, L.used, 0
    if L.hint > L.head and L.hint <= L.tail and limiterAt(L, L.hint - 1) <= at - L.period then
      L.k, L.win, L.skipped = L.hint, L.used - L.hintUnits, L.hintUnits
    end
    L.keptK, L.keptSkipped = L.k, L.skipped
  end
  -- Entry i of a log: the log's own below L.logged, then the plan's slots.
  local function timeOf(L, i)
    if i < L.logged then
      local t = limiterAt(L, i)
      return t
    end
    return slots[i - L.logged + 1][1]
  end
  local function unitsOf(L, i)
    if i < L.logged then
      local _, c = limiterAt(L, i)
      return c
    end
    return slots[i - L.logged + 1][3]
  end
  local granted = 0
  while granted < count do
    local need = total
    if not together then
      need = sizeOf(granted + 1)
    end
    local later = nil
    local fit = math.huge
    for _, L in ipairs(Ls) do
      if need > L.allowed then
        return slots, granted, L.period
      end
      local size = L.logged + #slots
      while L.k < size and timeOf(L, L.k) <= at - L.period do
        local u = unitsOf(L, L.k)
        L.win = L.win - u
        if L.k < L.logged then
          L.skipped = L.skipped + u
        end
        L.k = L.k + 1
      end
      local room = L.allowed - L.win
      if room < need then
        -- Not before the oldest entry still in this window leaves it.
        local t = timeOf(L, L.k) + L.period
        if not later or t > later then
          later = t
        end
      elseif room < fit then
        fit = room
      end
    end
    if later then
      at = later
    else
      if at > latest then
        break
      end
      local items, units = count, total
      if not together then
        if perMs and perMs < fit then
          fit = math.max(perMs, sizeOf(granted + 1))
        end
        items, units = 0, 0
        while granted + items < count do
          local u = sizeOf(granted + items + 1)
          if units + u > fit then
            break
          end
          units = units + u
          items = items + 1
        end
      end
      local last = slots[#slots]
      if last and last[1] == at then
        last[2] = last[2] + items
        last[3] = last[3] + units
      else
        slots[#slots + 1] = { at, items, units }
      end
      for _, L in ipairs(Ls) do
        L.win = L.win + units
        -- Where the next plan may start: the scan as of the latest slot placed (a scan past a
        -- slot it could not place has gone further than the next plan's first window).
        L.keptK, L.keptSkipped = L.k, L.skipped
      end
      granted = granted + items
      if perMs and not together then
        at = at + 1
      end
    end
  end
  for _, L in ipairs(Ls) do
    if L.keptK <= L.logged then
      L.hint, L.hintUnits = L.keptK, L.keptSkipped
    else
      L.hint, L.hintUnits = L.logged, L.keptSkipped
    end
  end
  if granted < count then
    return slots, granted, math.max(1, at - latest)
  end
  return slots, granted, -1
end

--[[
  A caller places slots up to `ahead` ms after now: returns how far ahead it may place them, the
  furthest any caller of the log asked for in the last LIMITER_MARGIN_HOLD_MS (fields H, Ht). A
  caller whose answers come quickly looks less far ahead; without this, callers looking further
  would take every unit of capacity before it came within its reach, and it would never be granted
  one. Saved by limiterSave.
]]
local function limiterAhead(L, ahead)
  local held, at = L.heldAhead or 0, L.heldAheadAt
  if ahead >= held or not at or L.now - at > LIMITER_MARGIN_HOLD_MS then
    L.heldAhead, L.heldAheadAt = ahead, L.now
    return ahead
  end
  return held
end

-- At most the tightest limit's rate per ms (rounded up) of one call's units at one ms: the perMs
-- of limiterPlan for a caller that spreads its units.
local function limiterPerMs(Ls)
  local rate = math.huge
  for _, L in ipairs(Ls) do
    rate = math.min(rate, L.allowed / L.period)
  end
  return math.max(1, math.ceil(rate))
end

-- Records `units` at `at` (not before the newest entry): merged into the newest entry if it has
-- that time, else a new entry.
local function limiterRecordAt(L, at, units)
  if units <= 0 then
    return
  end
  if L.tail > L.head and L.newest == at then
    local _, c = limiterEntry(L.key, L.tail - 1)
    redis.call('HSET', L.key, L.tail - 1, at .. ':' .. (c + units))
    L.cache[L.tail - 1] = nil
    if L.tail - 1 < L.hint then
      L.hintUnits = L.hintUnits + units
    end
  else
    redis.call('HSET', L.key, L.tail, at .. ':' .. units)
    L.tail = L.tail + 1
    L.newest = at
  end
  L.used = L.used + units
end

-- Records the first `items` items of a plan (made just now, nothing recorded since) in every log of
-- `Ls`; returns the slots recorded as { {at, items}, ... }.
local function limiterCommit(Ls, slots, items, sizes)
  local recorded = {}
  local left = items
  local first = 0
  for _, s in ipairs(slots) do
    if left <= 0 then
      break
    end
    local take = math.min(left, s[2])
    local units = take
    if sizes then
      units = 0
      for j = first + 1, first + take do
        units = units + sizes[j]
      end
    elseif take == s[2] then
      units = s[3]
    end
    for _, L in ipairs(Ls) do
      limiterRecordAt(L, s[1], units)
    end
    recorded[#recorded + 1] = { s[1], take }
    first = first + s[2]
    left = left - take
  end
  return recorded
end

-- Removes up to `units` recorded at exactly `at` (units whose work never started there). Looks from
-- the newest entry back: the units to remove are recent ones.
local function limiterRefund(L, at, units)
  local left = units
  for i = L.tail - 1, L.head, -1 do
    if left <= 0 then
      break
    end
    local t, c = limiterEntry(L.key, i)
    if t and t < at then
      break
    end
    if t == at and c > 0 then
      local take = math.min(left, c)
      redis.call('HSET', L.key, i, t .. ':' .. (c - take))
      L.cache[i] = nil
      L.used = L.used - take
      if i < L.hint then
        L.hintUnits = L.hintUnits - take
      end
      left = left - take
    end
  end
end

-- Removes up to `units` recorded at exactly `at` from the log at `key` (units no work used), without
-- opening it: only the entries and the unit count (field n) change.
local function limiterRefundKey(key, at, units)
  local s = redis.call('HMGET', key, 'h', 't', 'k')
  local head, tail, hint = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]) or 0
  if not head or not tail then
    return
  end
  local left = units
  for i = tail - 1, head, -1 do
    if left <= 0 then
      break
    end
    local t, c = limiterEntry(key, i)
    if t and t < at then
      break
    end
    if t == at and c > 0 then
      local take = math.min(left, c)
      redis.call('HSET', key, i, t .. ':' .. (c - take))
      redis.call('HINCRBY', key, 'n', -take)
      if i < hint then
        redis.call('HINCRBY', key, 'kw', -take)
      end
      left = left - take
    end
  end
end

--[[
  Moves `units` recorded at `from` to `at` (not before `from`) in every log of `Ls`, in place: among
  later entries if need be, so a late unit's new slot need not wait behind every slot already
  granted. Done only where it surely keeps every window within its limit, checked in each log: the
  log holds at least `units` at `from`, and at most allowed - units after `from`. A window holding
  the new time and ending less than a period after `from` holds `from` too, and loses the units it
  gains; one ending later holds only units recorded after `from`, and the moved ones. Returns false,
  changing nothing, where that does not hold. Reads the entries after `from` (a window's worth at
  most), or where the log has room for all its units and these, finds `from` by bisection; rewrites
  the entries after `at`. Same as SlidingWindowLimiter.moveInPlace in @sluice/core.
]]
local function limiterMoveInPlace(Ls, from, units, at)
  if at < from or units <= 0 then
    return false
  end
  local found = {}
  for j, L in ipairs(Ls) do
    local after = 0
    local index = nil
    if L.used + units <= L.allowed then
      -- Room for every unit of the log and these again: no window can go over, so only `from`'s
      -- entry is needed, found by bisection (the log is in time order) instead of a scan from the
      -- newest entry back, which costs a read per entry granted since `from`.
      local lo, hi = L.head, L.tail - 1
      while lo <= hi do
        local mid = math.floor((lo + hi) / 2)
        if limiterAt(L, mid) <= from then
          index, lo = mid, mid + 1
        else
          hi = mid - 1
        end
      end
      if index and limiterAt(L, index) ~= from then
        index = nil
      end
      after = -1
    end
    for i = L.tail - 1, L.head, -1 do
      if after < 0 then
        break
      end
      local t, c = limiterAt(L, i)
      if t <= from then
        if t == from then
          index = i
        end
        break
      end
      after = after + c
      if after + units > L.allowed then
        return false
      end
    end
    if not index then
      return false
    end
    local _, c = limiterAt(L, index)
    if c < units then
      return false
    end
    found[j] = index
  end
  for j, L in ipairs(Ls) do
    local index = found[j]
    local t, c = limiterAt(L, index)
    redis.call('HSET', L.key, index, t .. ':' .. (c - units))
    L.cache[index] = nil
    if index < L.hint then
      L.hintUnits = L.hintUnits - units
    end
    -- Where `at` goes: after the last entry not later than it (merged into it at the same time).
    local i = L.tail
    while i > L.head and limiterAt(L, i - 1) > at do
      i = i - 1
    end
    local ti, ci = nil, 0
    if i > L.head then
      ti, ci = limiterAt(L, i - 1)
    end
    if ti == at then
      redis.call('HSET', L.key, i - 1, at .. ':' .. (ci + units))
      L.cache[i - 1] = nil
      if i - 1 < L.hint then
        L.hintUnits = L.hintUnits + units
      end
    else
      if i < L.hint then
        -- Entries before the scan's stop shift: scan from the oldest next time.
        L.hint, L.hintUnits = L.head, 0
      end
      for k = L.tail, i + 1, -1 do
        local tk, ck = limiterAt(L, k - 1)
        redis.call('HSET', L.key, k, tk .. ':' .. ck)
        L.cache[k] = nil
      end
      redis.call('HSET', L.key, i, at .. ':' .. units)
      L.cache[i] = nil
      L.tail = L.tail + 1
      if not L.newest or at > L.newest then
        L.newest = at
      end
    end
  end
  return true
end

local function limiterSave(L)
  if L.head >= L.tail and L.pausedUntil <= L.now and not L.override then
    redis.call('DEL', L.key)
    return
  end
  if L.heldAheadAt then
    redis.call('HSET', L.key, 'A', L.allowed, 'P', L.period, 'W', L.keep, 'h', L.head, 't', L.tail, 'n', L.used, 'b', L.pausedUntil, 'M', L.heldMargin, 'Mt', L.heldAt, 'H', L.heldAhead, 'Ht', L.heldAheadAt, 'k', L.hint, 'kw', L.hintUnits)
  else
    redis.call('HSET', L.key, 'A', L.allowed, 'P', L.period, 'W', L.keep, 'h', L.head, 't', L.tail, 'n', L.used, 'b', L.pausedUntil, 'M', L.heldMargin, 'Mt', L.heldAt, 'k', L.hint, 'kw', L.hintUnits)
  end
  if L.override then
    redis.call('PERSIST', L.key) -- store-wide numbers stay until cleared
    return
  end
  local last = L.now
  if L.newest and L.newest > last then
    last = L.newest
  end
  if L.pausedUntil > last then
    last = L.pausedUntil
  end
  redis.call('PEXPIRE', L.key, L.keep + 1000 + (last - L.now))
end
