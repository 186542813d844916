-- Take an object's lease if nobody holds it.
-- KEYS[1] lease   KEYS[2] live index
-- ARGV[1] lease value ("<worker id>|<token>")   ARGV[2] ttl (ms)   ARGV[3] object id
-- Returns 1 if taken, 0 if another worker holds it.
if not redis.call("SET", KEYS[1], ARGV[1], "NX", "PX", tonumber(ARGV[2])) then
  return 0
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
return 1
