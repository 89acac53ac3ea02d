--[[
  Store several messages and publish their wire frames, in order, atomically:
  what publish-6.lua does for one message, for a batch (the server gathers the
  publishes of one event-loop turn into one call).

  KEYS[1] seq       id counter of the namespace (INCR)
  KEYS[2] epoch     epoch string of the namespace's log
  KEYS[3] index     sorted set: channel -> newest id
  KEYS[4] trimmed   hash: channel -> highest id removed by retention
  then per message i (from 0): KEYS[5 + 2i] its channel's sorted set,
                               KEYS[6 + 2i] its idempotency key

  ARGV[1] max messages kept per channel (retention by length)
  ARGV[2] idempotency window, seconds
  ARGV[3] candidate epoch, used only when the log has none
  ARGV[4] prefix of the pub/sub channels
  then per message i: ARGV[5 + 4i] channel, ARGV[6 + 4i] channel as a JSON
  string literal, ARGV[7 + 4i] data as JSON text, ARGV[8 + 4i] '1' when it
  has a real idempotency key

  Returns { epoch, id, dup, id, dup, … }
]]
local epoch = redis.call('GET', KEYS[2])
if not epoch then
  epoch = ARGV[3]
  redis.call('SET', KEYS[2], epoch)
end

local maxLen = tonumber(ARGV[1])
local now = redis.call('TIME')
local ts = now[1] .. string.format('%03d', math.floor(tonumber(now[2]) / 1000))
local out = { epoch }
-- channel -> { its sorted set, its newest id in this batch }, for the index and the length cap after the batch
local touched = {}
local n = (#ARGV - 4) / 4

for i = 0, n - 1 do
  local chKey, idemKey = KEYS[5 + 2 * i], KEYS[6 + 2 * i]
  local ch, chJson, data, keyed = ARGV[5 + 4 * i], ARGV[6 + 4 * i], ARGV[7 + 4 * i], ARGV[8 + 4 * i] == '1'
  local prev = keyed and redis.call('GET', idemKey)
  if prev then
    out[#out + 1] = tonumber(prev)
    out[#out + 1] = 1
  else
    local id = redis.call('INCR', KEYS[1])
    local idText = string.format('%d', id)
    local frame = '{"op":"msg","id":' .. idText .. ',"ch":' .. chJson .. ',"data":' .. data .. ',"ts":' .. ts .. '}'
    redis.call('ZADD', chKey, id, frame)
    touched[ch] = { chKey, id }
    if keyed then
      redis.call('SET', idemKey, idText, 'EX', ARGV[2])
    end
    redis.call('PUBLISH', ARGV[4] .. ch, frame)
    out[#out + 1] = id
    out[#out + 1] = 0
  end
end

-- The channel index and the length cap, once per channel: the same end state as after each message.
for ch, t in pairs(touched) do
  local chKey = t[1]
  redis.call('ZADD', KEYS[3], t[2], ch)
  local count = redis.call('ZCARD', chKey)
  if count > maxLen then
    local last = redis.call('ZRANGE', chKey, count - maxLen - 1, count - maxLen - 1, 'WITHSCORES')
    redis.call('ZREMRANGEBYRANK', chKey, 0, count - maxLen - 1)
    local prevMark = tonumber(redis.call('HGET', KEYS[4], ch) or '0')
    if tonumber(last[2]) > prevMark then
      redis.call('HSET', KEYS[4], ch, last[2])
    end
  end
end
return out
