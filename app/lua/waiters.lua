-- waiters.lua: count long-polls in flight, refusing one that would pass a cap.
--
-- KEYS[1]    {shop}:waiters:order:<orderId>
-- KEYS[2]    {shop}:waiters:credential:<token:hash | user:id>
-- KEYS[3]    {shop}:waiters:ip:<client ip>   (any number of such counters works)
-- ARGV[1]     mode: 'enter' | 'leave'
-- ARGV[2]     counter TTL, seconds (a crashed web process's counts lapse)
-- ARGV[3..]   enter: the cap of each key, in KEYS order
--
-- Returns:
--   enter   0 when admitted (every counter incremented); otherwise i, the 1-based
--           index of the first key at its cap (nothing changed)
--   leave   0 (every counter decremented, never below zero)
-- Lua 5.1 compatible.

local ttl = tonumber(ARGV[2])
if ARGV[1] == 'enter' then
  for i = 1, #KEYS do
    if (tonumber(redis.call('GET', KEYS[i])) or 0) >= tonumber(ARGV[2 + i]) then
      return i
    end
  end
  for i = 1, #KEYS do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ttl)
  end
  return 0
end
for i = 1, #KEYS do
  if (tonumber(redis.call('DECR', KEYS[i])) or 0) <= 0 then
    redis.call('DEL', KEYS[i])
  end
end
return 0
