--[[
  Read one chunk of a channel for replay, with its watermark (highest id removed), atomically
  (so a message can never vanish between the two without a gap being reported).

  KEYS[1] channel   sorted set of the channel: frame scored by id
  KEYS[2] trimmed   hash: channel -> highest id removed (acked by all, or by retention)

  ARGV[1] channel name
  ARGV[2] read ids strictly above this
  ARGV[3] read ids up to this (inclusive)
  ARGV[4] at most this many

  Returns { watermark, frame1, id1, frame2, id2, ... }
]]
local wm = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local items = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], ARGV[3], 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[4]))
table.insert(items, 1, wm)
return items
