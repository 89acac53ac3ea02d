--[[
  Register a connecting recipient with its pattern set and decide where its replay starts, atomically.
  Positions are kept per (recipient, pattern set): a set the recipient has not used before starts at
  the recipient's newest position; a recipient seen for the first time starts as `from` says.

  KEYS[1] epoch       epoch string of the namespace's log
  KEYS[2] seq         id counter (the head)
  KEYS[3] recipient   hash of the recipient: acked (its newest position, any set), s:<set key> per set
  KEYS[4] recipients  sorted set: recipient -> last seen (ms)
  KEYS[5] floors      sorted set: set key -> the lowest position among its recipients
  KEYS[6] subs        sorted set: set key .. '\n' .. recipient -> last seen (ms)

  ARGV[1] candidate epoch, used only when the log has none
  ARGV[2] recipient name
  ARGV[3] the pattern set's key (a canonical JSON array)
  ARGV[4] the client's epoch, or ''
  ARGV[5] the client's lastAckedId, or ''
  ARGV[6] 'head' or 'earliest' (for a recipient seen for the first time)
  ARGV[7] key prefix of the positions of a set (sorted set recipient -> acked; key: prefix .. set key,
          in the namespace's hash slot like every key here)

  Returns { epoch, head, resumeFrom, epochChanged (0|1), acked (this set's stored position) }
]]
--@include positions
--@include epoch

local epoch = ensureEpoch(KEYS[1], ARGV[1])
local head = tonumber(redis.call('GET', KEYS[2]) or '0')
local name, set, prefix = ARGV[2], ARGV[3], ARGV[7]
local stored = redis.call('ZSCORE', prefix .. set, name)
if stored then stored = tonumber(stored) end
local newest = redis.call('HGET', KEYS[3], 'acked')
if newest then newest = tonumber(newest) end

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
elseif newest then
  resume = math.min(newest, head)
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
-- When Redis refuses writes (OOM, MISCONF) the first write fails and none is done: the connection is still
-- served from where it asked (live and replay need no write), and its position is stored once Redis takes
-- writes again (its acks).
pcall(putOnSet, KEYS[3], KEYS[4], KEYS[5], KEYS[6], prefix, name, set, acked, newest)
return { epoch, head, resume, changed, acked }
