-- Redis's clock in ms, for every script that stamps or compares times (one clock for every server process).

-- A TIME reply in ms.
local function toMs(t)
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function nowMs()
  return toMs(redis.call('TIME'))
end

-- A TIME reply in ms as decimal text (a frame's ts): concatenated, never formatted as a float.
local function msText(t)
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
