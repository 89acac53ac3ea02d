--[[
  Forget a recipient: it no longer holds back trimming.

  KEYS[1] recipients  sorted set: recipient -> last seen (ms)
  KEYS[2] recipient   hash of the recipient: acked, patterns
  KEYS[3] psets       set of the distinct pattern sets (JSON) recipients have

  ARGV[1] key prefix of the pattern-set sorted sets (see hello-5.lua)
  ARGV[2] recipient name

  Returns 1 when the recipient existed, else 0.
]]
local prefix, name = ARGV[1], ARGV[2]
local old = redis.call('HGET', KEYS[2], 'patterns')
if old then
  redis.call('ZREM', prefix .. old, name)
  if redis.call('EXISTS', prefix .. old) == 0 then redis.call('SREM', KEYS[3], old) end
end
redis.call('DEL', KEYS[2])
return redis.call('ZREM', KEYS[1], name)
