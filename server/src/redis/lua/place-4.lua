--[[
  Put a recipient on a pattern set. A connection's sub/unsub carries its position to its new set (the
  old set keeps its own); a set the recipient already has keeps its position, since other devices may
  use it and its position says what they processed (the connection's own acks move it on). An import
  creates the recipient, or moves its position forward (never back).

  KEYS[1] recipient   hash of the recipient: acked (its newest position), s:<set key>
  KEYS[2] recipients  sorted set: recipient -> last seen (ms)
  KEYS[3] floors      sorted set: set key -> the lowest position among its recipients
  KEYS[4] subs        sorted set: set key .. '\n' .. recipient -> last seen (ms)

  ARGV[1] key prefix of the positions of a set (see hello-6.lua)
  ARGV[2] recipient name
  ARGV[3] the set key
  ARGV[4] the position
  ARGV[5] '1' (an import): create the recipient if it does not exist, and move an existing set's
          position forward to ARGV[4]; '' (a connection): a forgotten recipient stays forgotten

  Returns { the set's position after the call, 1 if the recipient had this set already else 0 }, or
  { -2, 0 } when the recipient does not exist (and was not created): ScriptCode.forgotten (redis/codes.ts).
]]
--@include positions

local prefix, name, set = ARGV[1], ARGV[2], ARGV[3]
local newest = redis.call('HGET', KEYS[1], 'acked')
if not newest and ARGV[5] ~= '1' then return { -2, 0 } end
local pos = tonumber(ARGV[4])
local stored = redis.call('ZSCORE', prefix .. set, name)
if stored and (ARGV[5] ~= '1' or tonumber(stored) > pos) then pos = tonumber(stored) end
putOnSet(KEYS[1], KEYS[2], KEYS[3], KEYS[4], prefix, name, set, pos, tonumber(newest))
return { pos, stored and 1 or 0 }
