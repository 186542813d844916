-- POST Counter.increment to one of N objects, chosen at random per request.
-- Usage: wrk -s increment.lua URL -- <objects> <name prefix>
local objects, prefix = 1, "bench"
function init(args)
  objects = tonumber(args[1] or "1")
  prefix = args[2] or prefix
  math.randomseed(os.time() + math.floor(os.clock() * 1e6))
end
function request()
  local path = string.format("/v1/objects/Counter/%s-%d/increment", prefix, math.random(0, objects - 1))
  return wrk.format("POST", path, {["Content-Type"] = "application/json"}, "{}")
end
local failures = 0
function response(status, headers, body)
  if status ~= 200 then failures = failures + 1 end
end
