--#include lease_alive
-- Take an object's lease if nobody holds it, or its holder's heartbeat stopped (a dead or
-- paused worker: the epoch fence stops it if it comes back).
-- KEYS[1] lease   KEYS[2] live index   KEYS[3] mailbox
-- ARGV[1] lease value ("<worker id>|<generation>|<token>")   ARGV[2] ttl (ms)   ARGV[3] object id
-- ARGV[4] heartbeat key prefix (+ worker id)   ARGV[5] the lease's backstop ttl (ms)
-- ARGV[6] wake key prefix (+ worker id)   ARGV[7] wake list ttl (ms)
-- Returns 1 if taken, 0 if a live holder keeps it; then, if calls are queued, that holder is
-- woken (it may have come back from a pause after an activation was sent for its object).
local current = redis.call("GET", KEYS[1])
if current then
  local alive, owner = lease_alive(current, ARGV[4])
  if alive then
    if redis.call("LLEN", KEYS[3]) > 0 then
      local wake = ARGV[6] .. owner
      redis.call("RPUSH", wake, ARGV[3])
      redis.call("PEXPIRE", wake, tonumber(ARGV[7]))
    end
    return 0
  end
end
redis.call("SET", KEYS[1], ARGV[1], "PX", tonumber(ARGV[5]))
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call("ZADD", KEYS[2], now + tonumber(ARGV[2]), ARGV[3])
return 1
