-- Durable Streams (/v1/stream): one stream's keys built from the namespace's stream prefix, its clock, expiry and removal.
-- A stream `p` is: prefix .. 'm:' .. p (hash: ct, tail, closed, ttl, exp, expAt, seq, id, src, forkAt, forkSub, refs, gone, cb),
-- prefix .. 'd:' .. p (sorted set: entry = 16-digit start offset .. bytes, scored by its start offset),
-- prefix .. 'p:' .. p (hash: producer id -> 'epoch:seq'); prefix .. 'all' is the set of every stream's path (what
-- a subscription's pattern is matched against when it is created). All share the namespace's hash tag. A change is
-- told on the pub/sub channel prefix .. 'wake' (the path), which wakes long-polls and SSE readers on every node.

local function dsNow()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function dsKeys(prefix, path)
  return prefix .. 'm:' .. path, prefix .. 'd:' .. path, prefix .. 'p:' .. path
end

-- Removes a stream's keys; a fork's source loses a reference, and a soft-deleted source left without any goes too.
local function dsDrop(prefix, path)
  while path do
    local m, d, p = dsKeys(prefix, path)
    local src = redis.call('HGET', m, 'src')
    redis.call('DEL', m, d, p)
    redis.call('SREM', prefix .. 'all', path)
    path = nil
    if src and src ~= '' then
      local sm = prefix .. 'm:' .. src
      if redis.call('EXISTS', sm) == 1 then
        local refs = redis.call('HINCRBY', sm, 'refs', -1)
        if refs <= 0 and redis.call('HGET', sm, 'gone') == '1' then path = src end
      end
    end
  end
end

-- Deletes (or, with forks, soft-deletes) a stream: its data stays for the forks' sake.
local function dsDelete(prefix, path)
  local m, d, p = dsKeys(prefix, path)
  if tonumber(redis.call('HGET', m, 'refs') or '0') > 0 then
    redis.call('HSET', m, 'gone', '1')
    redis.call('DEL', p)
  else
    dsDrop(prefix, path)
  end
end

-- The stream's meta as a table, or nil when it does not exist or has expired (then it is removed now).
local function dsLoad(prefix, path, now)
  local m = prefix .. 'm:' .. path
  local flat = redis.call('HGETALL', m)
  if #flat == 0 then return nil end
  local s = {}
  for i = 1, #flat, 2 do s[flat[i]] = flat[i + 1] end
  if s.gone ~= '1' and s.exp and s.exp ~= '' and tonumber(s.exp) <= now then
    dsDelete(prefix, path)
    return nil
  end
  return s
end

-- A read or a write restarts a sliding TTL.
local function dsTouch(prefix, path, s, now)
  if s.ttl and s.ttl ~= '' then
    redis.call('HSET', prefix .. 'm:' .. path, 'exp', tostring(now + tonumber(s.ttl) * 1000))
  end
end

local function dsPad(n)
  return string.format('%016d', n)
end

-- A content type's media type: what two content types must share to match (parameters and case aside).
local function dsEssence(ct)
  return string.lower((string.gsub(string.match(ct, '^[^;]*'), '%s', '')))
end
