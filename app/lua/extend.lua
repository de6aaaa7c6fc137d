-- extend.lua: push a HELD reservation's expiry later (never earlier).
-- uses: reservation.lua
--
-- KEYS[1]  {shop}:res:<reservationId>
-- KEYS[2]  {shop}:holds
-- ARGV[1]  reservation id
-- ARGV[2]  new expiresAt, unix seconds
-- ARGV[3]  record TTL in seconds from now
--
-- Returns:
--    1  extended (or already expiring at or after ARGV[2])
--    0  not HELD: nothing changed
--   -1  no such reservation: nothing changed
local refused = not_held(KEYS[1])
if refused then
  return refused
end
local current = tonumber(redis.call('HGET', KEYS[1], 'expiresAt')) or 0
local wanted = tonumber(ARGV[2])
if wanted > current then
  redis.call('HSET', KEYS[1], 'expiresAt', ARGV[2])
  redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
