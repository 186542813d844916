-- Read the next batch of calls from a mailbox, for the lease holder only.
-- The calls stay in the mailbox until complete.lua pops them after commit.
-- KEYS[1] mailbox   KEYS[2] lease
-- ARGV[1] lease value   ARGV[2] batch size   ARGV[3] call record key prefix
-- Returns false if the lease is not ours, else the list of entries (maybe empty).
if redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return false
end
local entries = redis.call("LRANGE", KEYS[1], 0, tonumber(ARGV[2]) - 1)
for _, entry in ipairs(entries) do
  local record = ARGV[3] .. string.sub(entry, 1, string.find(entry, " ", 1, true) - 1)
  if redis.call("HGET", record, "status") == "queued" then
    redis.call("HSET", record, "status", "running")
  end
end
return entries
