-- Shared by the scripts that keep positions per (recipient, pattern set): the clock, and the floor of a set.

-- Redis's clock in ms (the same clock for every server process).
local function nowMs()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- After the positions of `set` changed: its floor (the lowest position of any recipient using it) in
-- the floors sorted set; a set nobody uses any more leaves it. The set is noted in floors .. ':changed',
-- so that a janitor pass reads the floors that changed since the last, not all of them (floors-2.lua).
local function refloor(floors, prefix, set)
  local low = redis.call('ZRANGE', prefix .. set, 0, 0, 'WITHSCORES')
  if low[2] then
    if tonumber(redis.call('ZSCORE', floors, set)) == tonumber(low[2]) then return end
    redis.call('ZADD', floors, low[2], set)
  else
    if redis.call('ZREM', floors, set) == 0 then return end
  end
  redis.call('SADD', floors .. ':changed', set)
end
