--#include claim_batch
-- Read the next batch of calls from a mailbox, for the lease holder only.
-- The calls stay in the mailbox until complete.lua pops them after commit.
-- KEYS[1] mailbox   KEYS[2] lease
-- ARGV[1] lease value   ARGV[2] batch size   ARGV[3] call record key prefix
-- ARGV[4] the lease's backstop ttl (ms): renewed here, so only an object idle that long loses it
-- Returns false if the lease is not ours, else {entries, crash counts} (maybe empty): claim_batch.lua.
if redis.call("GET", KEYS[2]) ~= ARGV[1] then
  return false
end
redis.call("PEXPIRE", KEYS[2], tonumber(ARGV[4]))
local entries, crashes = claim_batch(KEYS[1], tonumber(ARGV[2]), ARGV[3])
return {entries, crashes}
