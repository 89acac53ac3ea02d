--[[
  The floors of the pattern sets for a janitor pass: only those that changed since this janitor's
  previous call (a pass then costs O(changes), not O(pattern sets): 30,000 sets are 60,000 items to
  send), or all of them when another reader took the changes meanwhile (another node's janitor, the
  CLI's trim) or when asked. The record of changes starts afresh atomically with the read.

  KEYS[1] floors    sorted set: set key -> the lowest position among its recipients
  KEYS[2] changed   set: the set keys whose floor changed (KEYS[1] .. ':changed', see includes/positions.lua)
  KEYS[3] reader    string: the id of the reader that took the changes last

  ARGV[1] the reader's id; '' to read all and take nothing (a dry run)

  Returns { 'all' | 'changed', set key, floor (nil: the set is no longer used), ... }
]]
local out
if ARGV[1] ~= '' and redis.call('GET', KEYS[3]) == ARGV[1] then
  out = { 'changed' }
  for _, set in ipairs(redis.call('SMEMBERS', KEYS[2])) do
    out[#out + 1] = set
    out[#out + 1] = redis.call('ZSCORE', KEYS[1], set)
  end
else
  out = { 'all' }
  local flat = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES')
  for i = 1, #flat do out[i + 1] = flat[i] end
end
if ARGV[1] ~= '' then
  redis.call('SET', KEYS[3], ARGV[1])
  redis.call('DEL', KEYS[2])
end
return out
