-- Storing messages in a channel's log: the next ids, the `msg` frames, the channel's sorted set, the channel index, the
-- length cap, then the live publish by the namespace's pub/sub mode. Shared by publishmany-n.lua (the server's
-- publishes, many channels per call) and dsappend-7.lua (a JSON stream's append reaches the channel of its name in
-- the same script: the stream never has a message that the channel lacks).
--@include cap
--@include epoch
--@include pubsub
--@include time

-- A stored message's wire frame; `chJson`: the channel as a JSON string literal, `data`: JSON text, `ts`: msText.
local function msgFrame(idText, chJson, data, ts)
  return '{"op":"msg","id":' .. idText .. ',"ch":' .. chJson .. ',"data":' .. data .. ',"ts":' .. ts .. '}'
end

-- Adds (score, frame, …) pairs to a channel, at most 500 pairs per ZADD (Lua's unpack has a limit), then the index
-- and the length cap once: the same end state as one message at a time.
local function channelWrite(chKey, index, trimmed, ch, adds, newest, maxLen)
  for i = 1, #adds, 1000 do
    redis.call('ZADD', chKey, unpack(adds, i, math.min(i + 999, #adds)))
  end
  redis.call('ZADD', index, newest, ch)
  capChannel(chKey, trimmed, ch, maxLen)
end

-- Publishes frames live, in order: SPUBLISH on the shard channel (sharded) and/or PUBLISH on each frame's target
-- (classic); `classic`, `sharded` from livePaths. Always after the writes: when Redis refuses writes (OOM, MISCONF)
-- the first write fails and nothing is published, so no reader ever gets a message that was not stored.
local function channelPublish(classic, sharded, shard, frames, targets)
  if sharded then
    for i = 1, #frames do redis.call('SPUBLISH', shard, frames[i]) end
  end
  if classic then
    for i = 1, #frames do redis.call('PUBLISH', targets[i], frames[i]) end
  end
end

-- Stores `datas` (JSON texts, in order) on one channel and publishes them: k = { seq, epoch, index, trimmed, config,
-- ch (its sorted set) }, `candidate`: the epoch used only when the log has none, `livePrefix`/`shard`: the classic
-- channels' prefix and the shard channel, `now`: a TIME reply. Returns the epoch and the first id (ids consecutive).
local function channelStore(k, ch, chJson, datas, maxLen, candidate, livePrefix, shard, now)
  local classic, sharded = livePaths(redis.call('HGET', k.config, 'pubsub'))
  local ts = msText(now)
  local seq = tonumber(redis.call('GET', k.seq) or '0')
  local first = seq + 1
  local adds, frames, targets = {}, {}, {}
  for i = 1, #datas do
    seq = seq + 1
    local frame = msgFrame(string.format('%d', seq), chJson, datas[i], ts)
    adds[#adds + 1] = seq
    adds[#adds + 1] = frame
    frames[i] = frame
    if classic then targets[i] = livePrefix .. ch end
  end
  redis.call('SET', k.seq, string.format('%d', seq))
  local epoch = ensureEpoch(k.epoch, candidate)
  channelWrite(k.ch, k.index, k.trimmed, ch, adds, seq, maxLen)
  channelPublish(classic, sharded, shard, frames, targets)
  return epoch, first
end
