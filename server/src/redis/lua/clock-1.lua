--[[
  Redis's clock, on the node that holds the namespace: the command connection's heartbeat, which
  also measures the offset between Redis's clock and the server's (publish deadlines are set on
  Redis's clock: publishmany-n.lua).

  KEYS[1] epoch   any key of the namespace (routes the call to its node on a Cluster; not read)

  Returns { seconds, microseconds } (TIME)
]]
return redis.call('TIME')
