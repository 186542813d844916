-- Whether a lease is live: its value is "<worker id>|<generation>|<token>", and it is live while
-- the worker's heartbeat key (<alive prefix><worker id>) holds that generation (leases.py).
-- Returns alive (boolean), the worker id, and its heartbeat key. The heartbeat key is built
-- here from the lease value, which a cluster-aware Redis would reject (keys.py).
local function lease_alive(lease, alive_prefix)
  local first = string.find(lease, "|", 1, true)
  local second = first and string.find(lease, "|", first + 1, true)
  if not second then
    return false, nil, nil
  end
  local owner = string.sub(lease, 1, first - 1)
  local alive_key = alive_prefix .. owner
  return redis.call("GET", alive_key) == string.sub(lease, first + 1, second - 1), owner, alive_key
end
