--[[
  Durable Streams POST: appends entries (and/or closes), checking closure, content type, producer and Stream-Seq at once.

  KEYS[1] meta      hash of the stream (its data and producer keys are built beside it)

  ARGV[1] prefix    the namespace's stream key prefix
  ARGV[2] path      the stream's path
  ARGV[3] ct        the request's content type, lowercased ('' when the body is empty)
  ARGV[4] close     '1': close the stream after the append
  ARGV[5] seq       Stream-Seq, or ''
  ARGV[6] pid       Producer-Id, or ''
  ARGV[7] pepoch    Producer-Epoch
  ARGV[8] pseq      Producer-Seq
  ARGV[i]  (i from 9) the data, one entry each

  Returns { status, tail, closed, a, b }: status 'ok' | 'missing' | 'gone' | 'closed' | 'closed-ok' | 'ct-mismatch' |
  'seq-conflict' | 'dup' (a: the producer's last seq) | 'stale' (a: its epoch) | 'epoch-seq' | 'gap' (a: expected, b: got)
]]
--@include ds
local prefix, path = ARGV[1], ARGV[2]
local now = dsNow()
local m, d, p = dsKeys(prefix, path)
local s = dsLoad(prefix, path, now)
if not s then return { 'missing', 0, '0', 0, 0 } end
if s.gone == '1' then return { 'gone', 0, '0', 0, 0 } end
local tail = tonumber(s.tail)
local pid = ARGV[6]
local pepoch, pseq = tonumber(ARGV[7]), tonumber(ARGV[8])
local hasData = #ARGV >= 9
if s.closed == '1' then
  if pid ~= '' and s.cb == pid .. '\n' .. ARGV[7] .. '\n' .. ARGV[8] then return { 'dup', tail, '1', pseq, 0 } end
  if not hasData and ARGV[4] == '1' then return { 'closed-ok', tail, '1', 0, 0 } end
  return { 'closed', tail, '1', 0, 0 }
end
if hasData and dsEssence(ARGV[3]) ~= dsEssence(s.ct) then return { 'ct-mismatch', tail, '0', 0, 0 } end
if pid ~= '' then
  local state = redis.call('HGET', p, pid)
  if state then
    local e, q = string.match(state, '^(%d+):(%d+)$')
    e, q = tonumber(e), tonumber(q)
    if pepoch < e then return { 'stale', tail, '0', e, 0 } end
    if pepoch > e then
      if pseq ~= 0 then return { 'epoch-seq', tail, '0', 0, 0 } end
    elseif pseq <= q then
      return { 'dup', tail, '0', q, 0 }
    elseif pseq ~= q + 1 then
      return { 'gap', tail, '0', q + 1, pseq }
    end
  elseif pseq ~= 0 then
    return { 'gap', tail, '0', 0, pseq }
  end
end
if ARGV[5] ~= '' and s.seq and s.seq ~= '' and ARGV[5] <= s.seq then return { 'seq-conflict', tail, '0', 0, 0 } end
for i = 9, #ARGV do
  redis.call('ZADD', d, tail, dsPad(tail) .. ARGV[i])
  tail = tail + #ARGV[i]
end
redis.call('HSET', m, 'tail', tail)
if ARGV[5] ~= '' then redis.call('HSET', m, 'seq', ARGV[5]) end
if pid ~= '' then redis.call('HSET', p, pid, ARGV[7] .. ':' .. ARGV[8]) end
local closed = '0'
if ARGV[4] == '1' then
  closed = '1'
  redis.call('HSET', m, 'closed', '1')
  if pid ~= '' then redis.call('HSET', m, 'cb', pid .. '\n' .. ARGV[7] .. '\n' .. ARGV[8]) end
end
dsTouch(prefix, path, s, now)
redis.call('PUBLISH', prefix .. 'wake', path)
return { 'ok', tail, closed, pseq or 0, 0 }
