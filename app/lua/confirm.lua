-- confirm.lua: turn a HELD reservation into CONFIRMED (the units are sold).
-- uses: reservation.lua
--
-- KEYS[1]  {shop}:res:<reservationId>
-- KEYS[2]  {shop}:holds
-- ARGV[1]  reservation id
--
-- Returns:
--    1  HELD -> CONFIRMED now
--    0  not HELD (already CONFIRMED or RELEASED): nothing changed
--   -1  no such reservation: nothing changed
local refused = not_held(KEYS[1])
if refused then
  return refused
end
redis.call('HSET', KEYS[1], 'status', 'CONFIRMED')
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
