-- waiters.lua: count long-polls in flight, refusing one that would pass a cap.
--
-- KEYS[1]    {shop}:waiters:order:<orderId>
-- KEYS[2]    {shop}:waiters:credential:<token:hash | user:id>
-- KEYS[3]    {shop}:waiters:ip:<client ip>   (any number of such counters works)
-- ARGV[1]     mode: 'enter' | 'watch' | 'leave'
-- ARGV[2]     counter TTL, seconds (a crashed web process's counts lapse)
-- ARGV[3..]   enter, watch: the cap of each counter, in KEYS order
--
-- 'watch' is 'enter' for a long-poll already listening for the order's changes: its
-- LAST key is the order's read model ({shop}:co:<orderId>), not a counter, and once
-- admitted the script also answers the read model's version, so the waiter need not
-- re-read the whole model in another round trip to learn it has nothing new yet.
--
-- Returns:
--   enter   0 when admitted (every counter incremented); otherwise i, the 1-based
--           index of the first key at its cap (nothing changed)
--   watch   {0, version} when admitted (version -1: no read model); {i, -1} refused
--   leave   0 (every counter decremented, never below zero)
-- Lua 5.1 compatible.

local ttl = tonumber(ARGV[2])
local counters = #KEYS
if ARGV[1] == 'watch' then
  counters = #KEYS - 1
end
if ARGV[1] == 'enter' or ARGV[1] == 'watch' then
  for i = 1, counters do
    if (tonumber(redis.call('GET', KEYS[i])) or 0) >= tonumber(ARGV[2 + i]) then
      if ARGV[1] == 'watch' then
        return {i, -1}
      end
      return i
    end
  end
  for i = 1, counters do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ttl)
  end
  if ARGV[1] == 'enter' then
    return 0
  end
  local model = KEYS[#KEYS]
  if redis.call('EXISTS', model) == 0 then
    return {0, -1}
  end
  return {0, tonumber(redis.call('HGET', model, 'version')) or 0}
end
for i = 1, #KEYS do
  if (tonumber(redis.call('DECR', KEYS[i])) or 0) <= 0 then
    redis.call('DEL', KEYS[i])
  end
end
return 0
