-- One object's alarm changes, into the scheduler's time index; and if one of them is due before
-- the leading scheduler's next look, a wake-up for it (published, and the look lowered to that
-- time, so that the announcements after it publish only for an alarm due sooner still).
-- KEYS[1] alarms time index   KEYS[2] the scheduler's next look (due_and_next.lua)
-- ARGV[1] wake channel   ARGV[2] n   ARGV[3 .. 2 + 2n] pairs: score, member to set
-- ARGV[3 + 2n ..] members to remove
local n = tonumber(ARGV[2])
local last_add = 2 + 2 * n
local CHUNK = 1000 -- arguments per ZADD/ZREM: unpack() has a stack limit
local earliest = nil
for i = 3, last_add, 2 do
  local score = tonumber(ARGV[i])
  if earliest == nil or score < earliest then
    earliest = score
  end
end
for i = 3, last_add, CHUNK do
  redis.call("ZADD", KEYS[1], unpack(ARGV, i, math.min(i + CHUNK - 1, last_add)))
end
for i = last_add + 1, #ARGV, CHUNK do
  redis.call("ZREM", KEYS[1], unpack(ARGV, i, math.min(i + CHUNK - 1, #ARGV)))
end
if earliest == nil then
  return 0 -- only removals: nothing comes due sooner
end
local look = redis.call("GET", KEYS[2])
if look and earliest >= tonumber(look) then
  return 0 -- the scheduler looks by then anyway
end
if look then
  redis.call("SET", KEYS[2], string.format("%d", earliest), "KEEPTTL")
end
redis.call("PUBLISH", ARGV[1], string.format("%d", earliest))
return 1
