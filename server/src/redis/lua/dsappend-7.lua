--[[
  Durable Streams POST: appends entries (and/or closes), checking closure, content type, producer and Stream-Seq at once.

  A JSON stream whose path is a channel (ARGV[13] not '') is that channel: the appended messages are stored on the
  channel's log in this same call, exactly as publishmany-n.lua stores a publish (includes/channel-store.lua: next
  ids, `msg` frames, channel sorted set, index, length cap, the epoch, the live publish by the namespace's pub/sub
  mode), so the stream never holds a message that the channel's WebSocket and SSE readers do not get. No idempotency
  key: the producer headers (and Stream-Seq) already keep an append from being stored twice.

  KEYS[1] meta      hash of the stream (its data and producer keys are built beside it)
  KEYS[2] seq       id counter of the namespace
  KEYS[3] epoch     epoch string of the namespace's log
  KEYS[4] index     sorted set: channel -> newest id
  KEYS[5] trimmed   hash: channel -> highest id removed
  KEYS[6] config    hash: its field `pubsub` is the namespace's pub/sub mode (includes/pubsub.lua)
  KEYS[7] channel   the sorted set of the channel named `path` (unused when ARGV[13] is '')

  ARGV[1] prefix    the namespace's stream key prefix
  ARGV[2] path      the stream's path
  ARGV[3] ct        the request's content type, lowercased ('' when the body is empty)
  ARGV[4] close     '1': close the stream after the append
  ARGV[5] seq       Stream-Seq, or ''
  ARGV[6] pid       Producer-Id, or ''
  ARGV[7] pepoch    Producer-Epoch
  ARGV[8] pseq      Producer-Seq
  ARGV[9] maxLen    max messages kept per channel (retention by length)
  ARGV[10] candidate epoch, used only when the log has none
  ARGV[11] prefix of the classic pub/sub channels (PUBLISH on prefix .. channel)
  ARGV[12] the namespace's shard channel (SPUBLISH in sharded mode)
  ARGV[13] the path as a JSON string literal when it is a valid channel, else ''
  ARGV[i]  (i from 14) the data, one entry each

  Returns { status, tail, closed, a, b }: status 'ok' | 'missing' | 'gone' | 'closed' | 'closed-ok' | 'ct-mismatch' |
  'seq-conflict' | 'dup' (a: the producer's last seq) | 'stale' (a: its epoch) | 'epoch-seq' | 'gap' (a: expected, b: got);
  then, when the append was stored on the channel too, the log's epoch and the first id (consecutive ids from it on).
]]
--@include ds
--@include channel-store
local prefix, path = ARGV[1], ARGV[2]
local now = dsNow()
local m, d, p = dsKeys(prefix, path)
local s = dsLoad(prefix, path, now)
if not s then return { 'missing', 0, '0', 0, 0 } end
if s.gone == '1' then return { 'gone', 0, '0', 0, 0 } end
local tail = tonumber(s.tail)
local pid = ARGV[6]
local pepoch, pseq = tonumber(ARGV[7]), tonumber(ARGV[8])
local hasData = #ARGV >= 14
if s.closed == '1' then
  if pid ~= '' and s.cb == pid .. '\n' .. ARGV[7] .. '\n' .. ARGV[8] then return { 'dup', tail, '1', pseq, 0 } end
  if not hasData and ARGV[4] == '1' then return { 'closed-ok', tail, '1', 0, 0 } end
  return { 'closed', tail, '1', 0, 0 }
end
if hasData and dsEssence(ARGV[3]) ~= dsEssence(s.ct) then return { 'ct-mismatch', tail, '0', 0, 0 } end
if pid ~= '' then
  local state = redis.call('HGET', p, pid)
  if state then
    local e, q = string.match(state, '^(%d+):(%d+)$')
    e, q = tonumber(e), tonumber(q)
    if pepoch < e then return { 'stale', tail, '0', e, 0 } end
    if pepoch > e then
      if pseq ~= 0 then return { 'epoch-seq', tail, '0', 0, 0 } end
    elseif pseq <= q then
      return { 'dup', tail, '0', q, 0 }
    elseif pseq ~= q + 1 then
      return { 'gap', tail, '0', q + 1, pseq }
    end
  elseif pseq ~= 0 then
    return { 'gap', tail, '0', 0, pseq }
  end
end
if ARGV[5] ~= '' and s.seq and s.seq ~= '' and ARGV[5] <= s.seq then return { 'seq-conflict', tail, '0', 0, 0 } end
local datas = {}
for i = 14, #ARGV do
  redis.call('ZADD', d, tail, dsPad(tail) .. ARGV[i])
  tail = tail + #ARGV[i]
  datas[#datas + 1] = ARGV[i]
end
redis.call('HSET', m, 'tail', tail)
if ARGV[5] ~= '' then redis.call('HSET', m, 'seq', ARGV[5]) end
if pid ~= '' then redis.call('HSET', p, pid, ARGV[7] .. ':' .. ARGV[8]) end
local closed = '0'
if ARGV[4] == '1' then
  closed = '1'
  redis.call('HSET', m, 'closed', '1')
  if pid ~= '' then redis.call('HSET', m, 'cb', pid .. '\n' .. ARGV[7] .. '\n' .. ARGV[8]) end
end
dsTouch(prefix, path, s, now)
local out = { 'ok', tail, closed, pseq or 0, 0 }
if #datas > 0 and ARGV[13] ~= '' and dsEssence(s.ct) == 'application/json' then
  local k = { seq = KEYS[2], epoch = KEYS[3], index = KEYS[4], trimmed = KEYS[5], config = KEYS[6], ch = KEYS[7] }
  local epoch, first = channelStore(k, path, ARGV[13], datas, tonumber(ARGV[9]), ARGV[10], ARGV[11], ARGV[12], redis.call('TIME'))
  out[6], out[7] = epoch, first
end
redis.call('PUBLISH', prefix .. 'wake', path)
return out
