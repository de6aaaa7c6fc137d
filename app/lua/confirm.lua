-- confirm.lua: turn a HELD reservation into CONFIRMED (the units are sold).
--
-- KEYS[1]  {shop}:res:<reservationId>
-- KEYS[2]  {shop}:holds
-- ARGV[1]  reservation id
--
-- Returns:
--    1  HELD -> CONFIRMED now
--    0  not HELD (already CONFIRMED or RELEASED): nothing changed
--   -1  no such reservation: nothing changed
local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  return -1
end
if status ~= 'HELD' then
  return 0
end
redis.call('HSET', KEYS[1], 'status', 'CONFIRMED')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
