-- What a scheduler pass dispatches, and when it must look next: up to ARGV[2] entries due by
-- ARGV[1] with their scores, then the score of the first entry not yet due (empty if none).
-- One script, not a pipeline of two reads: one command on the client's short path.
-- It also records the pass's next look, the first entry's score or ARGV[3] if that is sooner, so
-- that an announcement of an alarm due before it wakes the scheduler (announce.lua). Atomic with
-- the read: whatever is announced after it compares with the look, whatever before, was read.
-- KEYS[1] alarms time index   KEYS[2] the scheduler's next look
-- ARGV[1] now (ms)   ARGV[2] limit   ARGV[3] latest next look (ms)   ARGV[4] the look's ttl (ms)
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0, ARGV[2])
local after = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. ARGV[1], "+inf", "WITHSCORES", "LIMIT", 0, 1)
local look = tonumber(ARGV[3])
if after[2] and tonumber(after[2]) < look then
  look = tonumber(after[2])
end
redis.call("SET", KEYS[2], string.format("%d", look), "PX", ARGV[4])
return {due, after}
