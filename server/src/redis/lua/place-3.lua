--[[
  Set a recipient's patterns, and move its position forward (never back):
  a connection's sub/unsub, an import. Creates the recipient only when given
  a position.

  KEYS[1] recipient   hash of the recipient: acked, patterns
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)
  KEYS[3] psets       set of the distinct pattern sets (JSON) recipients have

  ARGV[1] key prefix of the pattern-set sorted sets (see hello-5.lua)
  ARGV[2] recipient name
  ARGV[3] patterns, JSON array
  ARGV[4] acked id, or '' to keep the stored one

  Returns 1, or 0 when the recipient does not exist and no position was given.
]]
local prefix, name, patterns = ARGV[1], ARGV[2], ARGV[3]
local row = redis.call('HMGET', KEYS[1], 'acked', 'patterns')
local acked = row[1] and tonumber(row[1])
if ARGV[4] ~= '' then
  acked = math.max(acked or -1, tonumber(ARGV[4]))
  local now = redis.call('TIME')
  redis.call('ZADD', KEYS[2], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), name)
elseif not acked then
  return 0
end
redis.call('HSET', KEYS[1], 'acked', string.format('%d', acked), 'patterns', patterns)
local old = row[2]
if old and old ~= patterns then
  redis.call('ZREM', prefix .. old, name)
  if redis.call('EXISTS', prefix .. old) == 0 then redis.call('SREM', KEYS[3], old) end
end
redis.call('ZADD', prefix .. patterns, acked, name)
redis.call('SADD', KEYS[3], patterns)
return 1
