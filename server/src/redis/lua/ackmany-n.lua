--[[
  Move recipients' acked positions forward (never back): the acks of one
  event-loop turn, from any connections, in one call.

  KEYS[1] epoch       epoch string of the namespace's log
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)
  KEYS[2 + i]         (i from 1) the hash of ack i's recipient: acked, patterns

  ARGV[1]             key prefix of the pattern-set sorted sets (see hello-5.lua)
  per ack i (from 1): ARGV[3i - 1] the epoch its connection lives in,
                      ARGV[3i] recipient name, ARGV[3i + 1] acked id

  Returns per ack: the stored acked id; -1 when the epoch changed (the log
  was lost: an old position must not leak into the new log); -2 when the
  recipient was forgotten (it is not re-created by an ack).
]]
local current = redis.call('GET', KEYS[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local prefix = ARGV[1]
local out = {}
for i = 1, (#ARGV - 1) / 3 do
  local key, name, id = KEYS[2 + i], ARGV[3 * i], tonumber(ARGV[3 * i + 1])
  local row = redis.call('HMGET', key, 'acked', 'patterns')
  local stored = row[1]
  if current ~= ARGV[3 * i - 1] then
    out[i] = -1
  elseif not stored then
    out[i] = -2
  else
    redis.call('ZADD', KEYS[2], 'XX', ms, name)
    if id > tonumber(stored) then
      redis.call('HSET', key, 'acked', ARGV[3 * i + 1])
      if row[2] then redis.call('ZADD', prefix .. row[2], id, name) end
      out[i] = id
    else
      out[i] = tonumber(stored)
    end
  end
end
return out
