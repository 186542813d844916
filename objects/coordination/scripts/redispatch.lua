-- Sweeper: decide whether an overdue object of the live index needs an activation.
-- Atomic, so that several sweepers send at most one activation per grace period.
-- KEYS[1] live index   KEYS[2] lease   KEYS[3] mailbox
-- ARGV[1] object id   ARGV[2] activation grace (ms)
-- Returns 1 if the caller must send an activation, else 0.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) > now then
  return 0
end
local pttl = redis.call("PTTL", KEYS[2])
if pttl > 0 then
  redis.call("ZADD", KEYS[1], now + pttl, ARGV[1])
  return 0
end
if redis.call("LLEN", KEYS[3]) == 0 then
  redis.call("ZREM", KEYS[1], ARGV[1])
  return 0
end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
