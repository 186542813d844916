--#include claim_batch
-- Claim the next batch of several objects at once, each for its lease holder only: claim.lua's
-- work for each object, in one round trip (the wake listener's, for the objects one read woke).
-- KEYS per object: mailbox, lease
-- ARGV[1] batch size   ARGV[2] call record key prefix   ARGV[3] the leases' backstop ttl (ms)
-- ARGV[4..] per object: lease value
-- Returns per object: false if the lease is not ours, else {entries, crash counts} (maybe empty).
local claims = {}
for i = 1, #KEYS / 2 do
  local mailbox, lease = KEYS[2 * i - 1], KEYS[2 * i]
  if redis.call("GET", lease) ~= ARGV[3 + i] then
    claims[i] = false
  else
    redis.call("PEXPIRE", lease, tonumber(ARGV[3]))
    local entries, crashes = claim_batch(mailbox, tonumber(ARGV[1]), ARGV[2])
    claims[i] = {entries, crashes}
  end
end
return claims
