-- Push dispatched alarms back by the redelivery delay, unless the owner has announced a
-- newer due time for one meanwhile (its score is then no longer the one we dispatched).
-- KEYS[1] alarms time index   ARGV[1] new score   ARGV[2..] pairs: member, dispatched score
local moved = 0
for i = 2, #ARGV, 2 do
  local score = redis.call("ZSCORE", KEYS[1], ARGV[i])
  if score and tonumber(score) == tonumber(ARGV[i + 1]) then
    redis.call("ZADD", KEYS[1], ARGV[1], ARGV[i])
    moved = moved + 1
  end
end
return moved
