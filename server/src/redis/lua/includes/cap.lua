-- The length cap of a channel (retention by length), shared by the publishing scripts and functions.

-- Keeps the newest `maxLen` messages of the channel `ch` (sorted set `chKey`) and raises the channel's
-- watermark in `trimmed` (its highest removed id), so that a replay that wanted a removed message
-- reports a gap.
local function capChannel(chKey, trimmed, ch, maxLen)
  local n = redis.call('ZCARD', chKey)
  if n <= maxLen then return end
  local last = redis.call('ZRANGE', chKey, n - maxLen - 1, n - maxLen - 1, 'WITHSCORES')
  redis.call('ZREMRANGEBYRANK', chKey, 0, n - maxLen - 1)
  if tonumber(last[2]) > tonumber(redis.call('HGET', trimmed, ch) or '0') then
    redis.call('HSET', trimmed, ch, last[2])
  end
end
