--#include claim_batch
-- Publish the outcomes of a committed batch, pop it from the mailbox, and claim the next one.
-- KEYS[1] mailbox   KEYS[2] lease   KEYS[3] live index
-- ARGV[1] lease value   ARGV[2] entries to pop   ARGV[3] call record key prefix
-- ARGV[4] object id   ARGV[5] reply list ttl (ms)
-- ARGV[6] size of the next batch to claim (0: claim none)   ARGV[7] the lease's backstop ttl (ms)
-- ARGV[8..] per call: call id, reply list key or "", status, outcome payload, call record ttl (s)
-- Returns {-1} if the lease is not ours (nothing published: the next owner
-- replays the recorded outcomes), else {calls still queued, entries, crash counts}: the next
-- batch, claimed as claim.lua would (claim_batch.lua), when calls are still queued and ARGV[6] > 0,
-- so the drain goes on without a claim round trip. An emptied mailbox takes the object out of
-- the live index: an idle owned object costs the sweeper nothing.
if redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return {-1}
end
for i = 8, #ARGV, 5 do
  local record = ARGV[3] .. ARGV[i]
  redis.call("HSET", record, "status", ARGV[i + 2], "outcome", ARGV[i + 3])
  redis.call("EXPIRE", record, tonumber(ARGV[i + 4]))
  if ARGV[i + 1] ~= "" then
    redis.call("RPUSH", ARGV[i + 1], ARGV[i + 3])
    redis.call("PEXPIRE", ARGV[i + 1], tonumber(ARGV[5]))
  end
end
redis.call("LTRIM", KEYS[1], tonumber(ARGV[2]), -1)
local left = redis.call("LLEN", KEYS[1])
if left == 0 then
  redis.call("ZREM", KEYS[3], ARGV[4])
  return {0}
end
local size = tonumber(ARGV[6])
if size == 0 then
  return {left}
end
redis.call("PEXPIRE", KEYS[2], tonumber(ARGV[7]))
local entries, crashes = claim_batch(KEYS[1], size, ARGV[3])
return {left, entries, crashes}
