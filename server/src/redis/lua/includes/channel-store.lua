-- Storing messages in a channel's log: the next ids, the `msg` frames, the channel's sorted set, the channel index, the
-- length cap, then the live publish by the namespace's pub/sub mode. Shared by publishmany-n.lua (the server's
-- publishes, many channels per call), functions/dps.lua (FCALL dps_publish) and dsappend-7.lua (a JSON stream's
-- append reaches the channel of its name in the same script: the stream never has a message that the channel lacks).
-- And the other way: a publish on a channel appends to the Durable Streams JSON stream of its name (includes/ds.lua's
-- layout), in the publish's own script.
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

-- The Durable Streams JSON stream of the channel `ch` (keys under `dsPrefix`, the namespace's stream prefix), when it
-- is open, not deleted and not expired at `nowMs` (ms): { meta key, data key, tail, ttl }; false otherwise.
local function channelStream(dsPrefix, ch, nowMs)
  local m = dsPrefix .. 'm:' .. ch
  local f = redis.call('HMGET', m, 'ct', 'gone', 'closed', 'tail', 'exp', 'ttl')
  if f[1] and string.lower((string.gsub(string.match(f[1], '^[^;]*'), '%s', ''))) == 'application/json' and f[2] ~= '1'
    and f[3] ~= '1' and not (f[5] and f[5] ~= '' and tonumber(f[5]) <= nowMs) then
    return { m, dsPrefix .. 'd:' .. ch, tonumber(f[4]), f[6] }
  end
  return false
end

-- Appends one message (JSON text) to such a stream at its tail: one entry, scored by its start offset.
local function streamAppend(st, data)
  redis.call('ZADD', st[2], st[3], string.format('%016d', st[3]) .. data)
  st[3] = st[3] + #data
  st.changed = true
end

-- After a stream's appends: its new tail, and its sliding TTL restarted (the caller then publishes the wake).
local function streamAppended(st, nowMs)
  redis.call('HSET', st[1], 'tail', st[3])
  if st[4] and st[4] ~= '' then redis.call('HSET', st[1], 'exp', tostring(nowMs + tonumber(st[4]) * 1000)) end
end
