--[[
  Notice that the Redis server holding the log is not the one the log was
  last checked on (a restart, or a replica promoted), and decide whether the
  log may have lost acknowledged writes. If it may have, the epoch changes, so
  no client position can silently skip a message (ids after the loss would
  otherwise be handed out again).

  KEYS[1] epoch    epoch string of the namespace's log
  KEYS[2] server   run id of the Redis server the log was last checked on,
                   or 'clean' after a shutdown that flushed everything
  KEYS[3] seq      id counter (read, for the report)

  ARGV[1] candidate epoch, used when the log has none or must start anew
  ARGV[2] 'check': decide what is certain (nothing changed, a new log, a
          replica promoted: async replication may have lost the tail);
          'keep' / 'reset': the caller's decision for a restart of the same
          server, given its persistence settings
  ARGV[3] with 'keep'/'reset': the run id that decision is about

  Returns { epoch, outcome, runId, head } with outcome one of
  'same', 'new' (the log was empty), 'restarted' (the caller decides),
  'kept', 'reset' (a new epoch)
]]
--@include epoch

local info = redis.call('INFO', 'server')
local runId = string.match(info, 'run_id:(%w+)')
local repl = redis.call('INFO', 'replication')
local replid2 = string.match(repl, 'master_replid2:(%w+)') or ''
local promoted = string.match(replid2, '^0+$') == nil

local epoch, created = ensureEpoch(KEYS[1], ARGV[1])
local head = tonumber(redis.call('GET', KEYS[3]) or '0')
if created then
  redis.call('SET', KEYS[2], runId)
  return { epoch, 'new', runId, head }
end

local stored = redis.call('GET', KEYS[2])
if stored == runId then
  return { epoch, 'same', runId, head }
end
if not stored or stored == 'clean' then
  -- first check of this log, or the last server shut down cleanly
  redis.call('SET', KEYS[2], runId)
  return { epoch, 'same', runId, head }
end

local decision = ARGV[2]
if promoted then
  decision = 'reset'
elseif decision == 'check' or ARGV[3] ~= runId then
  return { epoch, 'restarted', runId, head }
end

redis.call('SET', KEYS[2], runId)
if decision == 'keep' then
  return { epoch, 'kept', runId, head }
end
redis.call('SET', KEYS[1], ARGV[1])
return { ARGV[1], 'reset', runId, head }
