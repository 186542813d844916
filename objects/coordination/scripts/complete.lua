-- Publish the outcomes of a committed batch and pop it from the mailbox.
-- KEYS[1] mailbox   KEYS[2] lease   KEYS[3] live index
-- ARGV[1] lease value   ARGV[2] entries to pop   ARGV[3] call record key prefix
-- ARGV[4] object id   ARGV[5] reply list ttl (ms)
-- ARGV[6..] per call: call id, reply list key or "", status, outcome payload, call record ttl (s)
-- Returns -1 if the lease is not ours (nothing published: the next owner
-- replays the recorded outcomes), else the number of calls still queued. An emptied
-- mailbox takes the object out of the live index: an idle owned object costs the sweeper nothing.
if redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return -1
end
for i = 6, #ARGV, 5 do
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
end
return left
