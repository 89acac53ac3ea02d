-- Positions per (recipient, pattern set), for the scripts that keep them: a set's floor, a recipient's place on a set.
--@include time

-- The member of the subs sorted set for (recipient, set), as keys.ts's subMember makes it: a set key (JSON) never
-- holds a raw newline.
local function subMember(set, name)
  return set .. '\n' .. name
end

-- After the positions of `set` changed: its floor (the lowest position of any recipient using it) in
-- the floors sorted set; a set nobody uses any more leaves it. The set is noted in floors .. ':changed',
-- so that a janitor pass reads the floors that changed since the last, not all of them (floors-3.lua).
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

-- Puts recipient `name` on `set` at `pos`, seen now: the set's positions and floor, the recipient's hash (its newest
-- position, `newest` or nil, raised to `pos`; the set), and the last-seen times of the pair and of the recipient.
local function putOnSet(recipientKey, recipients, floors, subs, prefix, name, set, pos, newest)
  redis.call('ZADD', prefix .. set, pos, name)
  refloor(floors, prefix, set)
  redis.call('HSET', recipientKey, 'acked', string.format('%d', math.max(newest or 0, pos)), 's:' .. set, '1')
  local ms = nowMs()
  redis.call('ZADD', subs, ms, subMember(set, name))
  redis.call('ZADD', recipients, ms, name)
end
