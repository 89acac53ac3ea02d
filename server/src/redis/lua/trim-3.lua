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
local key = KEYS[1]
local acked = 0
local retained = 0
local wm = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local newWm = wm
local floor = tonumber(ARGV[2])
if floor >= 0 then
  local top = redis.call('ZREVRANGEBYSCORE', key, floor, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if top[2] then
    acked = redis.call('ZREMRANGEBYSCORE', key, '-inf', floor)
    newWm = math.max(newWm, tonumber(top[2]))
  end
end

local cut = tonumber(ARGV[3])
if cut >= 0 then
  local top = redis.call('ZREVRANGEBYSCORE', key, cut, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
  if top[2] then
    retained = retained + redis.call('ZREMRANGEBYSCORE', key, '-inf', cut)
    newWm = math.max(newWm, tonumber(top[2]))
  end
end
local maxLen = tonumber(ARGV[4])
local n = redis.call('ZCARD', key)
if n > maxLen then
  local last = redis.call('ZRANGE', key, n - maxLen - 1, n - maxLen - 1, 'WITHSCORES')
  retained = retained + redis.call('ZREMRANGEBYRANK', key, 0, n - maxLen - 1)
  newWm = math.max(newWm, tonumber(last[2]))
end
if newWm > wm then
  redis.call('HSET', KEYS[2], ARGV[1], string.format('%d', newWm))
end
return { acked, retained }
