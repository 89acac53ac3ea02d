--[[
  Store one message and publish its ready-made wire frame, atomically.

  KEYS[1] seq       id counter of the namespace (INCR)
  KEYS[2] epoch     epoch string of the namespace's log
  KEYS[3] index     sorted set: channel -> newest id
  KEYS[4] channel   sorted set of the channel: frame scored by id
  KEYS[5] idem      idempotency key (only read/written when ARGV[8] == '1')
  KEYS[6] trimmed   hash: channel -> highest id removed (acked by all, or by retention)

  ARGV[1] channel name
  ARGV[2] channel name as a JSON string literal
  ARGV[3] data as JSON text
  ARGV[4] max messages kept in the channel (retention by length)
  ARGV[5] idempotency window, seconds
  ARGV[6] candidate epoch, used only when the log has none (a new or lost log)
  ARGV[7] pub/sub channel to PUBLISH the frame on
  ARGV[8] '1' when KEYS[5] is a real idempotency key

  Returns { id, dup (0|1), epoch }
]]
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[6]
  redis.call('SET', KEYS[2], epoch)
end

if ARGV[8] == '1' then
  local prev = redis.call('GET', KEYS[5])
  if prev then
    return { tonumber(prev), 1, epoch }
  end
end

local id = redis.call('INCR', KEYS[1])
local idText = string.format('%d', id)
local now = redis.call('TIME')
local ts = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
local frame = '{"op":"msg","id":' .. idText .. ',"ch":' .. ARGV[2] .. ',"data":' .. ARGV[3] .. ',"ts":' .. ts .. '}'

redis.call('ZADD', KEYS[4], id, frame)
redis.call('ZADD', KEYS[3], id, ARGV[1])

local maxLen = tonumber(ARGV[4])
local n = redis.call('ZCARD', KEYS[4])
if n > maxLen then
  local last = redis.call('ZRANGE', KEYS[4], n - maxLen - 1, n - maxLen - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', KEYS[4], 0, n - maxLen - 1)
  local prev = tonumber(redis.call('HGET', KEYS[6], ARGV[1]) or '0')
  if tonumber(last[2]) > prev then
    redis.call('HSET', KEYS[6], ARGV[1], last[2])
  end
end

if ARGV[8] == '1' then
  redis.call('SET', KEYS[5], idText, 'EX', ARGV[5])
end

redis.call('PUBLISH', ARGV[7], frame)
return { id, 0, epoch }
