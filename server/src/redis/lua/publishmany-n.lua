--[[
  Store several messages and publish their wire frames, in order, atomically: the server gathers the
  publishes of one event-loop turn into one call. Each channel of the batch is named once; each
  message refers to it by number. (Any Redis client publishes one message with FCALL dps_publish:
  functions/dps.lua, which validates what it is given; the server's own data is JSON.stringify's.)

  KEYS[1] seq       id counter of the namespace (read once, set once)
  KEYS[2] epoch     epoch string of the namespace's log
  KEYS[3] index     sorted set: channel -> newest id
  KEYS[4] trimmed   hash: channel -> highest id removed (acked by all, or by retention)
  KEYS[5] config    hash: its field `pubsub` is the namespace's pub/sub mode, read by every call
                    ('sharded': SPUBLISH, 'classic': PUBLISH, none: both; includes/pubsub.lua)
  KEYS[6 + j]       (j from 0 to c - 1) the sorted set of channel j of the batch
  KEYS[5 + c + n]   (n from 1) the n-th idempotency key of the batch (of the messages that have one)

  ARGV[1] deadline, ms on Redis's clock: past it, nothing is done (the caller has been answered
          `unavailable` by then, so a call that reaches Redis late, held by a stalled network or
          resent, can never store what its caller was told failed); 0: none
  ARGV[2] max messages kept per channel (retention by length)
  ARGV[3] idempotency window, seconds
  ARGV[4] candidate epoch, used only when the log has none
  ARGV[5] prefix of the classic pub/sub channels (PUBLISH on prefix .. channel)
  ARGV[6] the namespace's shard channel (Redis >= 7): in sharded mode every frame is SPUBLISHed on it
          instead, so on a Cluster it stays on the namespace's shard
  ARGV[7] c, the number of channels
  ARGV[8 .. 7 + 2c] per channel j (from 0): ARGV[8 + 2j] its name,
                    ARGV[9 + 2j] its name as a JSON string literal
  ARGV[8 + 2c] the messages' layout: per message i (from 0), "j n " (each a decimal and a space):
                j its channel's number (from 0); n > 0: its idempotency key is the n-th after the
                channels' (KEYS[5 + c + n]), 0: it has none (one argument, not two per message: a
                client's cost is per argument)
  ARGV[9 + 2c + i] the data of message i, as JSON text

  A channel with a Durable Streams JSON stream of the same name (includes/ds.lua; its keys built from KEYS[1]'s
  prefix), open and not expired, gets each stored message appended to it too; each such stream's path is then
  published on its wake channel (dsPrefix .. 'wake'). (An append to such a stream reaches the channel the other way,
  inside dsappend-7.lua, which stores it here directly: neither ever comes back through the other.)

  Returns { epoch, first, i, id, i, id, … }: the messages stored by this call
  have consecutive ids from `first` on, in batch order; each (i, id) pair is a
  message (number i from 0) whose key was already used: it stored nothing and
  its id is the earlier one. An error starting with DEADLINE: nothing was done.
]]
--@include channel-store

local now = redis.call('TIME')
local deadline = tonumber(ARGV[1])
if deadline > 0 then
  local late = toMs(now) - deadline
  if late > 0 then return redis.error_reply('DEADLINE passed by ' .. late .. ' ms: nothing was stored') end
end

local maxLen = tonumber(ARGV[2])
local prefix = ARGV[5]
-- The mode as the namespace's config says now: atomic with a switch (pubsubmode-1.lua).
local classic, sharded = livePaths(redis.call('HGET', KEYS[5], 'pubsub'))
local c = tonumber(ARGV[7])
local ts = msText(now)
local out = { '', 0 }
local seq = tonumber(redis.call('GET', KEYS[1]) or '0')
local first = seq + 1
-- per channel number: its ZADD arguments (score, frame, …) and its newest id in this batch
local adds, newest = {}, {}
-- the frames to publish and their pub/sub channels, once everything is stored
local frames, targets = {}, {}
local keysToSet = {}
-- idempotency keys set by this call (written after the loop): a key twice in one batch is stored once
local setHere = {}
-- per channel number: the Durable Streams JSON stream of its name ({ meta key, data key, tail }), false if none
local streams = {}
local dsPrefix = string.sub(KEYS[1], 1, #KEYS[1] - #'seq') .. 'ds:'
local nowMs = toMs(now)
local function streamOf(j)
  local s = streams[j]
  if s == nil then
    s = channelStream(dsPrefix, ARGV[8 + 2 * j], nowMs)
    streams[j] = s
  end
  return s
end

local i = 0
for js, ns in string.gmatch(ARGV[8 + 2 * c], '(%d+) (%d+) ') do
  local j, n = tonumber(js), tonumber(ns)
  local data = ARGV[9 + 2 * c + i]
  local idem = n > 0 and KEYS[5 + c + n]
  local prev = idem and (setHere[idem] or redis.call('GET', idem))
  if prev then
    out[#out + 1] = i
    out[#out + 1] = tonumber(prev)
  else
    seq = seq + 1
    local idText = string.format('%d', seq)
    local frame = msgFrame(idText, ARGV[9 + 2 * j], data, ts)
    local a = adds[j]
    if not a then
      a = {}
      adds[j] = a
    end
    a[#a + 1] = seq
    a[#a + 1] = frame
    newest[j] = seq
    if idem then
      keysToSet[#keysToSet + 1] = idem
      keysToSet[#keysToSet + 1] = idText
      setHere[idem] = idText
    end
    frames[#frames + 1] = frame
    if classic then targets[#targets + 1] = prefix .. ARGV[8 + 2 * j] end
    local st = streamOf(j)
    if st then streamAppend(st, data) end
  end
  i = i + 1
end
local woken = {}
for j, st in pairs(streams) do
  if st and st.changed then
    woken[#woken + 1] = ARGV[8 + 2 * j]
    streamAppended(st, nowMs)
  end
end

-- Writes first, PUBLISH last: when Redis refuses writes (OOM, MISCONF) the first write fails and
-- nothing was published, so no reader ever gets a message that was not stored.
if seq >= first then
  out[2] = first
  redis.call('SET', KEYS[1], string.format('%d', seq))
end
out[1] = ensureEpoch(KEYS[2], ARGV[4])
for i = 1, #keysToSet, 2 do
  redis.call('SET', keysToSet[i], keysToSet[i + 1], 'EX', ARGV[3])
end
-- Per channel: its messages, then the channel index and the length cap once (the same end state as after each message).
for j, a in pairs(adds) do
  channelWrite(KEYS[6 + j], KEYS[3], KEYS[4], ARGV[8 + 2 * j], a, newest[j], maxLen)
end
channelPublish(classic, sharded, ARGV[6], frames, targets)
for _, path in ipairs(woken) do
  redis.call('PUBLISH', dsPrefix .. 'wake', path)
end
return out
