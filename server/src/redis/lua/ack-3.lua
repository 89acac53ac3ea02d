--[[
  Move a recipient's acked position forward (never back).

  KEYS[1] epoch       epoch string of the namespace's log
  KEYS[2] recipient   hash of the recipient: acked, patterns
  KEYS[3] recipients  sorted set: recipient -> last seen (ms)

  ARGV[1] the epoch the connection lives in
  ARGV[2] recipient name
  ARGV[3] acked id

  Returns the stored acked id; -1 when the epoch changed (the log was lost:
  an old position must not leak into the new log); -2 when the recipient was
  forgotten (it is not re-created by an ack).
]]
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local stored = redis.call('HGET', KEYS[2], 'acked')
if not stored then
  return -2
end
local id = tonumber(ARGV[3])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[3], 'XX', tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), ARGV[2])
if id > tonumber(stored) then
  redis.call('HSET', KEYS[2], 'acked', ARGV[3])
  return id
end
return tonumber(stored)
