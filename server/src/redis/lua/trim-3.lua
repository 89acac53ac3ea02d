--[[
  Trim one channel: what every matching pattern set acked, then retention. Every removal records the
  channel's highest removed id (its watermark), so that a replay that wanted anything removed, for
  whatever reason (a set forgotten and back, a race with a hello), reports a gap instead of skipping.

  KEYS[1] channel   sorted set of the channel: frame scored by id
  KEYS[2] trimmed   hash: channel -> highest id removed (acked by all, or by retention)
  KEYS[3] index     sorted set: channel -> newest id

  ARGV[1] channel name
  ARGV[2] ack floor: remove ids <= this (-1: no pattern set matches, keep)
  ARGV[3] age cut: retention removes ids <= this (-1: nothing is too old)
  ARGV[4] max messages kept in the channel

  Returns { removed because acked, removed by retention }
]]
--@include cap

local key, trimmed, ch = KEYS[1], KEYS[2], ARGV[1]

-- Removes the ids <= cut, raising the watermark to the highest of them; how many it removed.
local function removeUpTo(cut)
  local top = redis.call('ZREVRANGEBYSCORE', key, cut, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if not top[2] then return 0 end
  local removed = redis.call('ZREMRANGEBYSCORE', key, '-inf', cut)
  raiseWatermark(trimmed, ch, top[2])
  return removed
end

local floor, cut = tonumber(ARGV[2]), tonumber(ARGV[3])
local acked = floor >= 0 and removeUpTo(floor) or 0
local retained = cut >= 0 and removeUpTo(cut) or 0
retained = retained + capChannel(key, trimmed, ch, tonumber(ARGV[4]))
return { acked, retained }
