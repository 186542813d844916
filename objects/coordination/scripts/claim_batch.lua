-- Claim the next batch at the head of a mailbox: mark its records "running" and count crashes.
-- claim.lua runs it alone; complete.lua runs it after popping a batch, so a drain that goes on
-- needs no claim round trip. Both check the lease first.
-- A call whose record is still "running" was claimed before and neither completed nor
-- handed back (handback.lua): the worker that claimed it died or hung. Its record's
-- "crashes" count goes up, and it is claimed alone, so that a call that kills workers
-- is told apart from the calls that happened to share its batch.
-- A call id may be in the mailbox more than once (sent again under its Idempotency-Key
-- while still queued): a copy after the first in this batch is the same claim, not a crash.
-- Returns the entries and their crash counts (maybe empty).
local function claim_batch(mailbox, size, record_prefix)
  local function record_of(entry)
    return record_prefix .. string.sub(entry, 1, string.find(entry, " ", 1, true) - 1)
  end
  local head = redis.call("LINDEX", mailbox, 0)
  if head and redis.call("HGET", record_of(head), "status") == "running" then
    size = 1
  end
  local entries = redis.call("LRANGE", mailbox, 0, size - 1)
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
  return entries, crashes
end
