-- Extend every lease a worker holds, in one round trip.
-- KEYS[1] live index   KEYS[2..] leases
-- ARGV[1] ttl (ms)   ARGV[2..] per lease: lease value, object id
-- Returns the 1-based positions (among the leases) of those no longer ours.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
local lost = {}
for i = 2, #KEYS do
  local value = ARGV[2 * (i - 1)]
  if redis.call("GET", KEYS[i]) == value then
    redis.call("PEXPIRE", KEYS[i], ttl)
    redis.call("ZADD", KEYS[1], now + ttl, ARGV[2 * (i - 1) + 1])
  else
    table.insert(lost, i - 1)
  end
end
return lost
