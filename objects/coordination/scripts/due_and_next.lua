-- What a scheduler pass dispatches, and when it must look next: up to ARGV[2] entries due by
-- ARGV[1] with their scores, then the score of the first entry not yet due (empty if none).
-- One script, not a pipeline of two reads: one command on the client's short path.
-- KEYS[1] alarms time index   ARGV[1] now (ms)   ARGV[2] limit
local due = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[1], "WITHSCORES", "LIMIT", 0, ARGV[2])
local after = redis.call("ZRANGEBYSCORE", KEYS[1], "(" .. ARGV[1], "+inf", "WITHSCORES", "LIMIT", 0, 1)
return {due, after}
