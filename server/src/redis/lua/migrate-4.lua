--[[
  Convert one recipient written by layout 1 (one position and the patterns of its latest hello) to
  layout 2 (positions per pattern set): its position becomes its stored set's. Runs once per recipient:
  a recipient already converted, or changed meanwhile, is left alone.

  KEYS[1] recipient   hash of the recipient: layout 1 { acked, patterns }, layout 2 { acked, s:<set key> }
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)
  KEYS[3] floors      sorted set: set key -> the lowest position among its recipients
  KEYS[4] subs        sorted set: set key .. '\n' .. recipient -> last seen (ms)

  ARGV[1] key prefix of the positions of a set (layout 1 used the same prefix with its patterns JSON)
  ARGV[2] recipient name
  ARGV[3] the patterns JSON as layout 1 stored it
  ARGV[4] the set key of those patterns

  Returns 1 when the recipient was converted, else 0.
]]
--@include positions

local prefix, name, old, set = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local row = redis.call('HMGET', KEYS[1], 'acked', 'patterns')
if not row[1] or row[2] ~= old then return 0 end
redis.call('ZREM', prefix .. old, name)
redis.call('ZADD', prefix .. set, row[1], name)
refloor(KEYS[3], prefix, set)
redis.call('HDEL', KEYS[1], 'patterns')
redis.call('HSET', KEYS[1], 's:' .. set, '1')
redis.call('ZADD', KEYS[4], redis.call('ZSCORE', KEYS[2], name) or nowMs(), subMember(set, name))
return 1
