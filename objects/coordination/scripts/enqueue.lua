--#include lease_alive
-- Append a call to an object's mailbox and decide who runs it.
-- KEYS[1] mailbox   KEYS[2] lease   KEYS[3] call record   KEYS[4] live index
-- ARGV[1] mailbox entry ("<call_id> <json>")   ARGV[2] object id
-- ARGV[3] call record ttl (s)   ARGV[4] wake key prefix (+ owner worker id)
-- ARGV[5] activation grace (ms)   ARGV[6] wake list ttl (ms)
-- ARGV[7] most calls the mailbox may hold (0: no bound)
-- ARGV[8] the call's fingerprint (its method and arguments; "" if not compared)
-- ARGV[9] the target's tenant (GET /v1/calls/{id} answers that tenant only)
-- ARGV[10] heartbeat key prefix (+ owner worker id): a lease is live while its holder beats
-- Returns {"done", outcome}  the call id already finished (idempotent retry)
--         {"reused"}         the call id was used for another method or other arguments
--         {"full"}           the mailbox holds its most calls: nothing was queued
--         {"owned"}          a live owner holds the lease; it was woken if idle
--         {"pending"}        an activation was requested recently; nothing to send
--         {"dispatch"}       no live owner: the caller must send an activation
local known = redis.call("HMGET", KEYS[3], "outcome", "fingerprint")
if ARGV[8] ~= "" and known[2] and known[2] ~= ARGV[8] then
  return {"reused"}
end
if known[1] then
  return {"done", known[1]}
end
local bound = tonumber(ARGV[7])
if bound > 0 and redis.call("LLEN", KEYS[1]) >= bound then
  return {"full"}
end
if redis.call("EXISTS", KEYS[3]) == 0 then
  redis.call("HSET", KEYS[3], "status", "queued", "object", ARGV[2], "tenant", ARGV[9])
  if ARGV[8] ~= "" then
    redis.call("HSET", KEYS[3], "fingerprint", ARGV[8])
  end
  redis.call("EXPIRE", KEYS[3], tonumber(ARGV[3]))
end
local length = redis.call("RPUSH", KEYS[1], ARGV[1])
local lease = redis.call("GET", KEYS[2])
local alive, owner, alive_key = false, nil, nil
if lease then
  alive, owner, alive_key = lease_alive(lease, ARGV[10])
end
if alive then
  -- The owner drains until it sees an empty mailbox, so only the first call
  -- after "empty" needs a wake-up. The wake key is built here from the lease
  -- value (it names the owner), which a cluster-aware Redis would reject.
  -- The object is due in the live index when its owner's heartbeat would expire:
  -- should the owner die before it empties the mailbox, the sweeper sends it on.
  if length == 1 then
    local wake = ARGV[4] .. owner
    redis.call("RPUSH", wake, ARGV[2])
    redis.call("PEXPIRE", wake, tonumber(ARGV[6]))
    redis.call("ZADD", KEYS[4], redis.call("PEXPIRETIME", alive_key), ARGV[2])
  end
  return {"owned"}
end
local t = redis.call("TIME")
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local deadline = redis.call("ZSCORE", KEYS[4], ARGV[2])
if deadline and tonumber(deadline) > now then
  return {"pending"}
end
redis.call("ZADD", KEYS[4], now + tonumber(ARGV[5]), ARGV[2])
return {"dispatch"}
