-- Hand claimed calls back to the mailbox after a batch that failed while its worker lived
-- (shipping refused or failed, Redis or disk trouble): they are queued again, not counted
-- as crashes by the next claim.
-- KEYS: the call records of the batch
-- Returns how many records went back to "queued".
local handed = 0
for _, record in ipairs(KEYS) do
  if redis.call("HGET", record, "status") == "running" then
    redis.call("HSET", record, "status", "queued")
    handed = handed + 1
  end
end
return handed
