-- The paths a live frame of a namespace takes, by its pub/sub mode (field `pubsub` of its config hash):
-- 'sharded': SPUBLISH on its shard channel; 'classic': PUBLISH per channel; none (no node decided yet, or
-- the config was lost with Redis's data): both, where Redis has SPUBLISH (>= 7), so that a node listening
-- either way hears every message until a node decides (pubsubmode-1.lua, which tells both paths).
-- Returns classic, sharded (booleans).
local function livePaths(mode)
  if mode == 'sharded' then return false, true end
  if mode == 'classic' then return true, false end
  return true, (redis.REDIS_VERSION_NUM or 0) >= 0x070000
end
