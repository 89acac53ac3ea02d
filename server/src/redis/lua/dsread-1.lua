--[[
  Durable Streams GET and HEAD: the stream's meta and the entries from an offset on, up to about maxBytes, at once.

  KEYS[1] meta      hash of the stream (its data key is built beside it)

  ARGV[1] prefix    the namespace's stream key prefix
  ARGV[2] path      the stream's path
  ARGV[3] from      read from this byte offset on ('now': the tail)
  ARGV[4] maxBytes  stop after the entry that passes this many bytes (0: meta only)
  ARGV[5] touch     '1': restarts a sliding TTL (reads do, HEAD does not)

  Returns { status, ct, tail, closed, id, ttl, expAt, exp, from, entry1, entry2, ... } (entries with their 16-digit
  offset prefix; the first may start before `from` when `from` is inside it); status 'ok' | 'missing' | 'gone' | 'bad-offset'
]]
--@include ds
local prefix, path = ARGV[1], ARGV[2]
local now = dsNow()
local _, d = dsKeys(prefix, path)
local s = dsLoad(prefix, path, now)
if not s then return { 'missing' } end
if s.gone == '1' then return { 'gone' } end
local tail = tonumber(s.tail)
local from = ARGV[3] == 'now' and tail or tonumber(ARGV[3])
if from > tail then return { 'bad-offset' } end
if ARGV[5] == '1' then dsTouch(prefix, path, s, now) end
local out = { 'ok', s.ct, tail, s.closed or '0', s.id, s.ttl or '', s.expAt or '', s.exp or '', from }
local max = tonumber(ARGV[4])
if max > 0 and from < tail then
  local size = 0
  local before = redis.call('ZREVRANGEBYSCORE', d, '(' .. from, '-inf', 'LIMIT', 0, 1)
  if before[1] and tonumber(string.sub(before[1], 1, 16)) + #before[1] - 16 > from then
    table.insert(out, before[1])
    size = #before[1] - 16
  end
  local offset = 0
  while size < max do
    local page = redis.call('ZRANGEBYSCORE', d, from, '+inf', 'LIMIT', offset, 100)
    if #page == 0 then break end
    for _, e in ipairs(page) do
      table.insert(out, e)
      size = size + #e - 16
      if size >= max then break end
    end
    offset = offset + #page
  end
end
return out
