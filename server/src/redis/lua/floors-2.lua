--[[
  The ack floor of every pattern set: the lowest acked id among the
  recipients that have exactly these patterns. A janitor pass costs one call
  per pass and O(pattern sets), whatever the number of recipients.

  KEYS[1] psets       set of the distinct pattern sets (JSON) recipients have
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)

  ARGV[1] key prefix of the pattern-set sorted sets (see hello-5.lua)
  ARGV[2] key prefix of the recipient hashes (prefix .. name)

  A log written before pattern sets existed has recipients but no sets: they
  are built from the recipient hashes first, once.

  Returns { patterns JSON, floor, ... }
]]
local prefix = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  for _, name in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
    local row = redis.call('HMGET', ARGV[2] .. name, 'acked', 'patterns')
    if row[1] and row[2] then
      redis.call('ZADD', prefix .. row[2], row[1], name)
      redis.call('SADD', KEYS[1], row[2])
    end
  end
end
local out = {}
for _, patterns in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local lowest = redis.call('ZRANGE', prefix .. patterns, 0, 0, 'WITHSCORES')
  if lowest[2] then
    out[#out + 1] = patterns
    out[#out + 1] = lowest[2]
  else
    redis.call('SREM', KEYS[1], patterns)
  end
end
return out
