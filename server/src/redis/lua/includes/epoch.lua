-- The log's epoch, created by whichever script touches an empty log first (a hello, a publish, the recovery check).

-- The epoch stored at `key`; `candidate`, stored there, when there is none (then true as the second value).
local function ensureEpoch(key, candidate)
  local epoch = redis.call('GET', key)
  if epoch then return epoch, false end
  redis.call('SET', key, candidate)
  return candidate, true
end
