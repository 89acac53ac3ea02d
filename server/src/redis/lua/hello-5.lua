--[[
  Register a connecting recipient and decide where its replay starts, atomically.

  KEYS[1] epoch       epoch string of the namespace's log
  KEYS[2] seq         id counter (the head)
  KEYS[3] recipient   hash of the recipient: acked, patterns
  KEYS[4] recipients  sorted set: recipient -> last seen (ms)
  KEYS[5] psets       set of the distinct pattern sets (JSON) recipients have

  ARGV[1] candidate epoch, used only when the log has none
  ARGV[2] recipient name
  ARGV[3] patterns, JSON array
  ARGV[4] the client's epoch, or ''
  ARGV[5] the client's lastAckedId, or ''
  ARGV[6] 'head' or 'earliest' (for a recipient seen for the first time)
  ARGV[7] key prefix of the pattern-set sorted sets (recipient -> acked; key: prefix .. patterns JSON,
          in the namespace's hash slot like every key here)

  Returns { epoch, head, resumeFrom, epochChanged (0|1), acked }
]]
local epoch = redis.call('GET', KEYS[1])
if not epoch then
  epoch = ARGV[1]
  redis.call('SET', KEYS[1], epoch)
end
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local row = redis.call('HMGET', KEYS[3], 'acked', 'patterns')
local stored, old = row[1], row[2]
if stored then stored = tonumber(stored) end

local resume
local changed = 0
if ARGV[4] ~= '' and ARGV[4] ~= epoch then
  -- the client's history is gone: start from the earliest retained message
  resume = 0
  changed = 1
elseif ARGV[5] ~= '' then
  resume = math.min(tonumber(ARGV[5]), head)
elseif stored then
  resume = math.min(stored, head)
elseif ARGV[6] == 'earliest' then
  resume = 0
else
  resume = head
end

local acked = stored
if not acked then
  acked = resume
elseif changed == 0 and resume > acked then
  acked = resume
end
redis.call('HSET', KEYS[3], 'acked', string.format('%d', acked), 'patterns', ARGV[3])
-- The recipient's entry in its pattern set's sorted set mirrors the hash (the janitor's ack floors).
if old and old ~= ARGV[3] then
  redis.call('ZREM', ARGV[7] .. old, ARGV[2])
  if redis.call('EXISTS', ARGV[7] .. old) == 0 then redis.call('SREM', KEYS[5], old) end
end
redis.call('ZADD', ARGV[7] .. ARGV[3], acked, ARGV[2])
redis.call('SADD', KEYS[5], ARGV[3])
local now = redis.call('TIME')
redis.call('ZADD', KEYS[4], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), ARGV[2])
return { epoch, head, resume, changed, acked }
