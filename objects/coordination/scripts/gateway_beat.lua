-- A gateway's heartbeat (an API process holding WebSockets): its deadline moves to Redis's
-- time plus the TTL, in one round trip, on the clock the reaper (reap.lua) reads.
-- KEYS[1] gateways index   KEYS[2] the gateway's hash of sockets
-- ARGV[1] the gateway id   ARGV[2] how long it counts as alive from now (ms)
-- Returns {1 if the gateway was not in the index (new, forgotten by a restart or taken by a
-- reaper) else 0, how many sockets its hash holds}.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return {added, redis.call("HLEN", KEYS[2])}
