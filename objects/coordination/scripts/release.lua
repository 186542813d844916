-- Give up an object's lease.
-- KEYS[1] lease   KEYS[2] mailbox   KEYS[3] live index
-- ARGV[1] lease value   ARGV[2] object id   ARGV[3] "idle", "drain" or "backoff"
-- ARGV[4] activation grace (ms)
--   idle:    release only if the mailbox is empty (no call can be stranded:
--            enqueue.lua sees either the lease or no lease, atomically)
--   drain:   release anyway (shutdown); queued calls make the object due now
--   backoff: release anyway (this worker cannot serve it); due after the grace
--            period, so a refusing or failing worker does not spin on it
-- Returns -1 if the lease was not ours, 0 if kept (calls queued, idle mode),
-- 1 if released with an empty mailbox, 2 if released with calls queued.
if redis.call("GET", KEYS[1]) ~= ARGV[1] then
  return -1
end
local queued = redis.call("LLEN", KEYS[2])
if queued > 0 and ARGV[3] == "idle" then
  return 0
end
redis.call("DEL", KEYS[1])
if queued == 0 then
  redis.call("ZREM", KEYS[3], ARGV[2])
  return 1
end
local due = 0
if ARGV[3] == "backoff" then
  local t = redis.call("TIME")
  due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[4])
end
redis.call("ZADD", KEYS[3], due, ARGV[2])
return 2
