--[[
  Forget one pattern set of a recipient (unused for the TTL), or the whole recipient: what is forgotten
  no longer holds back trimming. A recipient whose last set is forgotten is forgotten too.

  KEYS[1] recipients  sorted set: recipient -> last seen (ms)
  KEYS[2] recipient   hash of the recipient: acked (its newest position), s:<set key>
  KEYS[3] floors      sorted set: set key -> the lowest position among its recipients
  KEYS[4] subs        sorted set: set key .. '\n' .. recipient -> last seen (ms)

  ARGV[1] key prefix of the positions of a set (see hello-6.lua)
  ARGV[2] recipient name
  ARGV[3] the set key, or '' for every set of the recipient

  Returns 2 when the recipient is gone (it existed), 1 when one set of it was forgotten and it stays, else 0.
]]
--@include positions

local prefix, name = ARGV[1], ARGV[2]
local function drop(set)
  redis.call('ZREM', prefix .. set, name)
  refloor(KEYS[3], prefix, set)
  redis.call('ZREM', KEYS[4], subMember(set, name))
  redis.call('HDEL', KEYS[2], 's:' .. set)
end

if ARGV[3] ~= '' then
  local known = redis.call('HEXISTS', KEYS[2], 's:' .. ARGV[3]) == 1
  drop(ARGV[3])
  -- 'acked' and at least one other set left: the recipient stays
  if not known then return 0 end
  if redis.call('HLEN', KEYS[2]) > 1 then return 1 end
else
  for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
    if string.sub(field, 1, 2) == 's:' then drop(string.sub(field, 3)) end
  end
end
redis.call('DEL', KEYS[2])
if redis.call('ZREM', KEYS[1], name) == 1 or ARGV[3] ~= '' then return 2 end
return 0
