-- Read the next batch of calls from a mailbox, for the lease holder only.
-- The calls stay in the mailbox until complete.lua pops them after commit.
-- KEYS[1] mailbox   KEYS[2] lease
-- ARGV[1] lease value   ARGV[2] batch size   ARGV[3] call record key prefix
-- ARGV[4] the lease's backstop ttl (ms): renewed here, so only an object idle that long loses it
-- A call whose record is still "running" was claimed before and neither completed nor
-- handed back (handback.lua): the worker that claimed it died or hung. Its record's
-- "crashes" count goes up, and it is claimed alone, so that a call that kills workers
-- is told apart from the calls that happened to share its batch.
-- A call id may be in the mailbox more than once (sent again under its Idempotency-Key
-- while still queued): a copy after the first in this batch is the same claim, not a crash.
-- Returns false if the lease is not ours, else {entries, crash counts} (maybe empty).
if redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return false
end
redis.call("PEXPIRE", KEYS[2], tonumber(ARGV[4]))
local function record_of(entry)
  return ARGV[3] .. string.sub(entry, 1, string.find(entry, " ", 1, true) - 1)
end
local size = tonumber(ARGV[2])
local head = redis.call("LINDEX", KEYS[1], 0)
if head and redis.call("HGET", record_of(head), "status") == "running" then
  size = 1
end
local entries = redis.call("LRANGE", KEYS[1], 0, size - 1)
local crashes = {}
local claimed_now = {}
for i, entry in ipairs(entries) do
  local record = record_of(entry)
  local status = redis.call("HGET", record, "status")
  if claimed_now[record] then
    crashes[i] = claimed_now[record]
  elseif status == "running" then
    crashes[i] = redis.call("HINCRBY", record, "crashes", 1)
  else
    crashes[i] = tonumber(redis.call("HGET", record, "crashes") or "0")
    if status == "queued" then
      redis.call("HSET", record, "status", "running")
    end
  end
  claimed_now[record] = crashes[i]
end
return {entries, crashes}
