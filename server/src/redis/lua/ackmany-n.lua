--[[
  Move recipients' acked positions forward (never back): the acks of one
  event-loop turn, from any connections, in one call.

  KEYS[1] epoch       epoch string of the namespace's log
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)
  KEYS[2 + i]         (i from 1) the hash of ack i's recipient: acked, patterns

  per ack i (from 1): ARGV[3i - 2] the epoch its connection lives in,
                      ARGV[3i - 1] recipient name, ARGV[3i] acked id

  Returns per ack: the stored acked id; -1 when the epoch changed (the log
  was lost: an old position must not leak into the new log); -2 when the
  recipient was forgotten (it is not re-created by an ack).
]]
local current = redis.call('GET', KEYS[1])
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local out = {}
for i = 1, #ARGV / 3 do
  local key, name, id = KEYS[2 + i], ARGV[3 * i - 1], tonumber(ARGV[3 * i])
  local stored = redis.call('HGET', key, 'acked')
  if current ~= ARGV[3 * i - 2] then
    out[i] = -1
  elseif not stored then
    out[i] = -2
  else
    redis.call('ZADD', KEYS[2], 'XX', ms, name)
    if id > tonumber(stored) then
      redis.call('HSET', key, 'acked', ARGV[3 * i])
      out[i] = id
    else
      out[i] = tonumber(stored)
    end
  end
end
return out
