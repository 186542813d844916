-- Reaper: take the gateways (API processes holding WebSockets) whose heartbeat stopped.
-- Each taken gateway's deadline moves on by ARGV[2], so a reaper that dies half way is
-- followed by another; the close events it enqueues have fixed ids, so repeats are absorbed.
-- KEYS[1] gateways index
-- ARGV[1] most gateways to take   ARGV[2] how long a taken gateway is left to its reaper (ms)
-- Returns the taken gateway ids.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local overdue = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", now, "LIMIT", 0, tonumber(ARGV[1]))
for _, gateway in ipairs(overdue) do
  redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), gateway)
end
return overdue
