--#include lease_alive
--#include claim_batch
-- Take several objects' leases and claim each taken object's first batch, in one round trip:
-- acquire.lua's work, then claim.lua's, for each object (the host's, for objects it is asked to
-- activate: workers/host.py). A lease is taken if nobody holds it or its holder's heartbeat stopped.
-- KEYS[1] live index; then per object: lease, mailbox
-- ARGV[1] ttl (ms)   ARGV[2] heartbeat key prefix (+ worker id)   ARGV[3] the lease's backstop ttl (ms)
-- ARGV[4] wake key prefix (+ worker id)   ARGV[5] wake list ttl (ms)   ARGV[6] batch size
-- ARGV[7] call record key prefix; then per object: object id, lease value
-- Returns per object: false if a live holder keeps it (that holder is woken if calls are queued, as
-- in acquire.lua), else {entries, crash counts} of the batch claimed (maybe empty): claim_batch.lua.
local t = redis.call("TIME")
local due = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
local size = tonumber(ARGV[6])
local taken = {}
for i = 1, (#KEYS - 1) / 2 do
  local lease, mailbox = KEYS[2 * i], KEYS[2 * i + 1]
  local object_id, value = ARGV[6 + 2 * i], ARGV[7 + 2 * i]
  local kept = false
  local current = redis.call("GET", lease)
  if current then
    local alive, owner = lease_alive(current, ARGV[2])
    if alive then
      kept = true
      if redis.call("LLEN", mailbox) > 0 then
        local wake = ARGV[4] .. owner
        redis.call("RPUSH", wake, object_id)
        redis.call("PEXPIRE", wake, tonumber(ARGV[5]))
      end
    end
  end
  if kept then
    taken[i] = false
  else
    redis.call("SET", lease, value, "PX", tonumber(ARGV[3]))
    redis.call("ZADD", KEYS[1], due, object_id)
    local entries, crashes = claim_batch(mailbox, size, ARGV[7])
    taken[i] = {entries, crashes}
  end
end
return taken
