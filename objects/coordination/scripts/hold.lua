-- Take or keep a single-holder lease (the scheduler's): one round trip for both.
-- KEYS[1] lease   ARGV[1] our value   ARGV[2] ttl (ms)
-- Returns 1 if we held it already (extended), 2 if we just took it, 0 if someone else holds it.
local current = redis.call("GET", KEYS[1])
if current == ARGV[1] then
  redis.call("PEXPIRE", KEYS[1], tonumber(ARGV[2]))
  return 1
end
if current then
  return 0
end
redis.call("SET", KEYS[1], ARGV[1], "PX", tonumber(ARGV[2]))
return 2
