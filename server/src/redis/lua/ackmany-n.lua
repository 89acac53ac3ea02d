--[[
  Move positions forward (never back): the acks of one event-loop turn, from any connections, in one
  call. Each ack moves the position of its connection's (recipient, pattern set) only.

  KEYS[1] epoch       epoch string of the namespace's log
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)
  KEYS[3] floors      sorted set: set key -> the lowest position among its recipients
  KEYS[4] subs        sorted set: set key .. '\n' .. recipient -> last seen (ms)
  KEYS[4 + i]         (i from 1) the hash of ack i's recipient: acked (its newest position), s:<set key>

  ARGV[1]             key prefix of the positions of a set (see hello-6.lua)
  per ack i (from 1): ARGV[4i - 2] the epoch its connection lives in, ARGV[4i - 1] recipient name,
                      ARGV[4i] the set key, ARGV[4i + 1] acked id

  Returns per ack: the set's stored position; -1 when the epoch changed (the log was lost: an old
  position must not leak into the new log); -2 when the recipient or this set of it was forgotten
  (it is not re-created by an ack). Negative codes are named in redis/codes.ts (ScriptCode).
]]
--@include positions

local current = redis.call('GET', KEYS[1])
local ms = nowMs()
local prefix = ARGV[1]
local out = {}
local moved = {}
for i = 1, (#ARGV - 1) / 4 do
  local name, set, id = ARGV[4 * i - 1], ARGV[4 * i], tonumber(ARGV[4 * i + 1])
  local stored = current == ARGV[4 * i - 2] and redis.call('ZSCORE', prefix .. set, name)
  if current ~= ARGV[4 * i - 2] then
    out[i] = -1
  elseif not stored then
    out[i] = -2
  else
    redis.call('ZADD', KEYS[2], 'XX', ms, name)
    redis.call('ZADD', KEYS[4], 'XX', ms, subMember(set, name))
    if id > tonumber(stored) then
      redis.call('ZADD', prefix .. set, id, name)
      moved[set] = true
      local key = KEYS[4 + i]
      if id > tonumber(redis.call('HGET', key, 'acked') or '0') then redis.call('HSET', key, 'acked', ARGV[4 * i + 1]) end
      out[i] = id
    else
      out[i] = tonumber(stored)
    end
  end
end
for set in pairs(moved) do
  refloor(KEYS[3], prefix, set)
end
return out
