-- Removals from a channel, shared by publishing (the length cap) and trimming: each raises the channel's watermark.

-- Raises the watermark of `ch` in `trimmed` (its highest removed id) to `id`, so that a replay that wanted a removed
-- message reports a gap instead of skipping it.
local function raiseWatermark(trimmed, ch, id)
  if tonumber(id) > tonumber(redis.call('HGET', trimmed, ch) or '0') then
    redis.call('HSET', trimmed, ch, string.format('%d', tonumber(id)))
  end
end

-- Keeps the newest `maxLen` messages of the channel `ch` (sorted set `chKey`): retention by length. Returns how
-- many it removed.
local function capChannel(chKey, trimmed, ch, maxLen)
  local n = redis.call('ZCARD', chKey)
  if n <= maxLen then return 0 end
  local last = redis.call('ZRANGE', chKey, n - maxLen - 1, n - maxLen - 1, 'WITHSCORES')
  local removed = redis.call('ZREMRANGEBYRANK', chKey, 0, n - maxLen - 1)
  raiseWatermark(trimmed, ch, last[2])
  return removed
end
