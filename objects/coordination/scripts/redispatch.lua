--#include lease_alive
-- Sweeper: decide whether an overdue object of the live index needs an activation.
-- Atomic, so that several sweepers send at most one activation per grace period.
-- KEYS[1] live index   KEYS[2] lease   KEYS[3] mailbox
-- ARGV[1] object id   ARGV[2] activation grace (ms)   ARGV[3] heartbeat key prefix (+ worker id)
-- ARGV[4] wake key prefix (+ worker id)   ARGV[5] wake list ttl (ms)
-- Returns 1 if the caller must send an activation, else 0.
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = redis.call("ZSCORE", KEYS[1], ARGV[1])
if not deadline or tonumber(deadline) > now then
  return 0
end
local queued = redis.call("LLEN", KEYS[3])
local lease = redis.call("GET", KEYS[2])
if lease then
  local alive, owner, alive_key = lease_alive(lease, ARGV[3])
  if alive then
    if queued == 0 then
      redis.call("ZREM", KEYS[1], ARGV[1])
      return 0
    end
    -- Its owner lives: due again when the owner's heartbeat would expire. The owner is woken in
    -- case its wake-up went missing (a busy owner drains once more, at no harm).
    redis.call("ZADD", KEYS[1], redis.call("PEXPIRETIME", alive_key), ARGV[1])
    local wake = ARGV[4] .. owner
    redis.call("RPUSH", wake, ARGV[1])
    redis.call("PEXPIRE", wake, tonumber(ARGV[5]))
    return 0
  end
end
if queued == 0 then
  redis.call("ZREM", KEYS[1], ARGV[1])
  if lease then
    redis.call("DEL", KEYS[2])  -- a dead holder's: nothing to run, nobody to keep it for
  end
  return 0
end
redis.call("ZADD", KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
return 1
