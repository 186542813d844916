-- Purge an object's mailbox: every queued call fails with the given error, and its caller is told.
-- KEYS[1] mailbox   KEYS[2] lease
-- ARGV[1] call record key prefix   ARGV[2] call record ttl (s)   ARGV[3] reply list ttl (ms)
-- ARGV[4] the error (a JSON object) each purged call fails with
-- While a lease is held, the leading entries whose records are "running" are the owner's
-- claimed batch: complete.lua pops exactly those after its commit, so they stay.
-- Returns the number of calls purged.
local entries = redis.call("LRANGE", KEYS[1], 0, -1)
local function split(entry)
  local space = string.find(entry, " ", 1, true)
  return string.sub(entry, 1, space - 1), string.sub(entry, space + 1)
end
local keep = 0
if redis.call("EXISTS", KEYS[2]) == 1 then
  for _, entry in ipairs(entries) do
    local call_id = split(entry)
    if redis.call("HGET", ARGV[1] .. call_id, "status") ~= "running" then
      break
    end
    keep = keep + 1
  end
end
local err = cjson.decode(ARGV[4])
for i = keep + 1, #entries do
  local call_id, body = split(entries[i])
  local call = cjson.decode(body)
  local outcome = cjson.encode({call_id = call_id, ok = false, result = cjson.null, error = err})
  local record = ARGV[1] .. call_id
  redis.call("HSET", record, "status", "failed", "outcome", outcome)
  redis.call("EXPIRE", record, tonumber(ARGV[2]))
  if type(call.reply_to) == "string" and call.reply_to ~= "" then
    redis.call("RPUSH", call.reply_to, outcome)
    redis.call("PEXPIRE", call.reply_to, tonumber(ARGV[3]))
  end
end
if keep == 0 then
  redis.call("DEL", KEYS[1])
else
  redis.call("LTRIM", KEYS[1], 0, keep - 1)
end
return #entries - keep
