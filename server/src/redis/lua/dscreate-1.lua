--[[
  Durable Streams PUT: creates a stream (or a fork of one), or finds it with the same config (idempotent).

  KEYS[1] meta      hash of the stream (prefix .. 'm:' .. path; its data and producer keys are built beside it)

  ARGV[1] prefix    the namespace's stream key prefix
  ARGV[2] path      the stream's path
  ARGV[3] ct        content type, lowercased ('' when a fork inherits it)
  ARGV[4] ttl       seconds, or ''
  ARGV[5] expAt     Stream-Expires-At as given, or ''
  ARGV[6] expMs     that time in ms, or ''
  ARGV[7] closed    '1' to create it closed
  ARGV[8] src       path of the fork's source, or ''
  ARGV[9] forkAt    the fork offset (a number), or '' for the source's tail
  ARGV[10] forkSub  sub-offset past forkAt: messages (JSON) or bytes, or ''
  ARGV[i]  (i from 11) the initial data, one entry each (JSON streams: one message each)

  Returns { status, tail, closed, ct }: status 'created' | 'exists' | 'conflict' | 'gone' | 'no-source' |
  'source-gone' | 'bad-offset' | 'bad-sub' | 'ct-mismatch'
]]
--@include ds
local prefix, path = ARGV[1], ARGV[2]
local now = dsNow()
local m, d = dsKeys(prefix, path)
local s = dsLoad(prefix, path, now)
local closed = ARGV[7] == '1' and '1' or '0'
if s then
  if s.gone == '1' then return { 'gone', 0, 0, '' } end
  local same = (ARGV[3] == '' or dsEssence(s.ct) == dsEssence(ARGV[3])) and (s.closed or '0') == closed and (s.src or '') == ARGV[8]
  if ARGV[8] == '' or ARGV[4] ~= '' or ARGV[5] ~= '' then
    same = same and (s.ttl or '') == ARGV[4] and (s.expAt or '') == ARGV[5]
  end
  if ARGV[8] ~= '' and ARGV[9] ~= '' then same = same and s.forkAt == ARGV[9] end
  if ARGV[8] ~= '' then same = same and (s.forkSub or '') == ARGV[10] end
  if not same then return { 'conflict', tonumber(s.tail), s.closed or '0', s.ct } end
  return { 'exists', tonumber(s.tail), s.closed or '0', s.ct }
end

local ct, ttl, expAt, expMs = ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local tail = 0
if ARGV[8] ~= '' then
  local src = dsLoad(prefix, ARGV[8], now)
  if not src then return { 'no-source', 0, 0, '' } end
  if src.gone == '1' then return { 'source-gone', 0, 0, '' } end
  if ct ~= '' and dsEssence(ct) ~= dsEssence(src.ct) then return { 'ct-mismatch', 0, 0, src.ct } end
  ct = src.ct
  if ttl == '' and expAt == '' then
    ttl, expAt = src.ttl or '', src.expAt or ''
    if expAt ~= '' then expMs = src.exp end
  end
  local srcTail = tonumber(src.tail)
  local at = ARGV[9] == '' and srcTail or tonumber(ARGV[9])
  if at > srcTail then return { 'bad-offset', 0, 0, '' } end
  local sd = prefix .. 'd:' .. ARGV[8]
  local sub = tonumber(ARGV[10] ~= '' and ARGV[10] or '0')
  local upTo = at
  if sub > 0 then
    -- JSON: sub counts messages (one entry each); anything else: bytes of the entry at the fork offset.
    local json = dsEssence(src.ct) == 'application/json'
    local after = redis.call('ZRANGEBYSCORE', sd, at, '+inf', 'LIMIT', 0, json and sub or 1)
    if json then
      if #after < sub then return { 'bad-sub', 0, 0, '' } end
      local last = after[#after]
      upTo = tonumber(string.sub(last, 1, 16)) + #last - 16
    else
      if #after == 0 or sub > #after[1] - 16 then return { 'bad-sub', 0, 0, '' } end
      upTo = at + sub
    end
  end
  -- Copy on fork: the same offsets, the inherited entries (the last one cut at the divergence point).
  local entries = redis.call('ZRANGEBYSCORE', sd, '-inf', '(' .. upTo)
  for _, e in ipairs(entries) do
    local start = tonumber(string.sub(e, 1, 16))
    local len = #e - 16
    if start + len > upTo then e = string.sub(e, 1, 16 + upTo - start) end
    redis.call('ZADD', d, start, e)
  end
  tail = upTo
  redis.call('HINCRBY', prefix .. 'm:' .. ARGV[8], 'refs', 1)
  redis.call('HSET', m, 'src', ARGV[8], 'forkAt', ARGV[9], 'forkSub', ARGV[10])
end
for i = 11, #ARGV do
  redis.call('ZADD', d, tail, dsPad(tail) .. ARGV[i])
  tail = tail + #ARGV[i]
end
local id = redis.call('INCR', prefix .. 'ids')
redis.call('SADD', prefix .. 'all', path)
redis.call('HSET', m, 'ct', ct, 'tail', tail, 'closed', closed, 'ttl', ttl, 'expAt', expAt, 'id', id)
if ttl ~= '' then
  redis.call('HSET', m, 'exp', tostring(now + tonumber(ttl) * 1000))
elseif expMs ~= '' then
  redis.call('HSET', m, 'exp', expMs)
end
redis.call('PUBLISH', prefix .. 'wake', path)
return { 'created', tail, closed, ct }
