--[[
  The namespace's pub/sub mode (how live frames travel): read, set once (the first node decides), or
  switched (durable-pubsub pubsub-mode). Atomic with every publish, which reads the same field
  (publishmany-n.lua, functions/dps.lua): a switch is ordered after every message published in the old
  mode and before every message published in the new one.

  KEYS[1] config    hash: the field `pubsub` is 'classic' or 'sharded'; absent (no node decided yet, or
                    lost with Redis's data): frames go both ways (includes/pubsub.lua)

  ARGV[1] 'get': answer the mode (absent: '');
          'init': set ARGV[2] if the field is absent, then answer the mode it holds;
          'set': set ARGV[2]
  ARGV[2] 'classic' | 'sharded'
  ARGV[3] the control channel of classic mode (nodes in classic mode SUBSCRIBE to it)
  ARGV[4] the namespace's shard channel (nodes in sharded mode SSUBSCRIBE to it; every frame goes there)

  When the mode changes, a marker {"op":"pubsub-mode","mode":<new>} is published on the OLD path (PUBLISH
  on the control channel, or SPUBLISH on the shard channel; both when there was none), after everything
  published the old way: a node that receives it moves to the new path and catches its connections up
  from the store.

  Returns the mode now in force ('' for 'get' on a namespace that has none).
]]
--@include pubsub

local field = redis.call('HGET', KEYS[1], 'pubsub')
local op, mode = ARGV[1], ARGV[2]
if op == 'get' then return field or '' end
if op == 'init' and field then return field end
if mode ~= 'classic' and mode ~= 'sharded' then return redis.error_reply('bad_request: the mode is classic or sharded') end
redis.call('HSET', KEYS[1], 'pubsub', mode)
if field ~= mode then
  local marker = '{"op":"pubsub-mode","mode":"' .. mode .. '"}'
  local classic, sharded = livePaths(field)
  if classic then redis.call('PUBLISH', ARGV[3], marker) end
  if sharded then redis.call('SPUBLISH', ARGV[4], marker) end
end
return mode
