#!lua name=dps
--[[
  The `dps` Redis Function library (Redis >= 7), loaded by the server at start and after a restart or
  failover (FUNCTION LOAD REPLACE): any Redis client publishes without the server and without a script.

  FCALL dps_publish 1 dps:{<namespace>} <channel> <data-as-JSON-text> [<idempotency-key>]

  KEYS[1] dps:{<namespace>}  the namespace's key prefix (every key below is derived from it: one hash slot)
  ARGV[1] channel: 1 to 256 bytes of valid UTF-8
  ARGV[2] data: exactly one JSON value, as text (validJson: what JSON.parse takes, in valid UTF-8)
  ARGV[3] idempotency key (optional): the same key again within its window stores nothing new

  Stores and publishes exactly as the server's publish does (publishmany-n.lua): the next id, the
  channel's sorted set and the channel index, the length cap with its watermark, the idempotency key,
  then the ready-made frame, SPUBLISHed on the namespace's shard channel <prefix>:live when the namespace's
  pub/sub mode is sharded (on a Cluster it stays on the namespace's shard), PUBLISHed on
  <prefix>:live:<channel> when it is classic, both while it has none (includes/pubsub.lua). Settings come from <prefix>:config: maxLen and idemWindow, which the server
  writes at start, and pubsub, the namespace's mode (pubsubmode-1.lua), read by every call. A channel with a Durable
  Streams JSON stream of the same name (open, not expired) gets the message appended to it too, in this same call, and
  the stream's path published on <prefix>:ds:wake, as publishmany-n.lua does (includes/channel-store.lua).

  Returns { id, dup (0|1), epoch }. An invalid channel or data is refused with an error starting with
  `bad_request`, and nothing is stored. Without flags, Redis refuses the whole call up front when it
  refuses writes (OOM, MISCONF): never half done.
]]
--@include json-valid
--@include channel-store

local function publish(keys, args)
  local base, ch, data, key = keys[1], args[1], args[2], args[3]
  if #keys ~= 1 or not ch or not data or #args > 3 then
    return redis.error_reply('bad_request: usage: FCALL dps_publish 1 dps:{<namespace>} <channel> <json> [<key>]')
  end
  if #ch == 0 or #ch > 256 then return redis.error_reply('bad_request: the channel must be 1 to 256 bytes') end
  local chJson = cjson.encode(ch)
  if not validJson(chJson) then return redis.error_reply('bad_request: the channel is not valid UTF-8') end
  local ok, why = validJson(data)
  if not ok then return redis.error_reply('bad_request: data is not one JSON value (' .. why .. ')') end
  if key and (#key == 0 or #key > 256) then return redis.error_reply('bad_request: the key must be 1 to 256 bytes') end

  local conf = redis.call('HMGET', base .. ':config', 'maxLen', 'idemWindow', 'pubsub')
  local maxLen, window = tonumber(conf[1] or '100000'), conf[2] or '86400'
  local epoch = redis.call('GET', base .. ':epoch')
  local idem = key and (base .. ':idem:' .. key)
  if idem then
    local prev = redis.call('GET', idem)
    if prev then return { tonumber(prev), 1, epoch } end
  end
  -- The first write: when Redis refuses writes, nothing is done at all.
  local id = redis.call('INCR', base .. ':seq')
  if not epoch then
    local t = redis.call('TIME')
    epoch = 'fn' .. t[1] .. t[2] .. id
    redis.call('SET', base .. ':epoch', epoch)
  end
  local idText = string.format('%d', id)
  local now = redis.call('TIME')
  local frame = msgFrame(idText, chJson, data, msText(now))
  channelWrite(base .. ':ch:' .. ch, base .. ':index', base .. ':trimmed', ch, { id, frame }, id, maxLen)
  if idem then redis.call('SET', idem, idText, 'EX', window) end
  local dsPrefix, nowMs = base .. ':ds:', toMs(now)
  local st = channelStream(dsPrefix, ch, nowMs)
  if st then
    streamAppend(st, data)
    streamAppended(st, nowMs)
  end
  local classic, sharded = livePaths(conf[3])
  channelPublish(classic, sharded, base .. ':live', { frame }, { base .. ':live:' .. ch })
  if st then redis.call('PUBLISH', dsPrefix .. 'wake', ch) end
  return { id, 0, epoch }
end

redis.register_function('dps_publish', publish)
