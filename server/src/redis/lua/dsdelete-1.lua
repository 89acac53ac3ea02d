--[[
  Durable Streams DELETE: removes a stream, or soft-deletes it while forks still read its data.

  KEYS[1] meta      hash of the stream (its data and producer keys are built beside it)

  ARGV[1] prefix    the namespace's stream key prefix
  ARGV[2] path      the stream's path

  Returns 'deleted' | 'missing' | 'gone'
]]
--@include ds
local prefix, path = ARGV[1], ARGV[2]
local s = dsLoad(prefix, path, dsNow())
if not s then return 'missing' end
if s.gone == '1' then return 'gone' end
dsDelete(prefix, path)
redis.call('PUBLISH', prefix .. 'wake', path)
return 'deleted'
