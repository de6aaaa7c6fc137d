-- release.lua: give a HELD reservation's units back and mark it RELEASED.
-- uses: reservation.lua, counters.lua
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:res:<reservationId>
-- KEYS[3]  {shop}:holds
-- KEYS[4]  {shop}:avail:inactive   (units of a SKU made inactive meanwhile go back there)
-- ARGV[1]  reservation id
--
-- Returns:
--    1  HELD -> RELEASED now, units back in {shop}:avail (or its inactive twin)
--    0  not HELD (already CONFIRMED or RELEASED): nothing changed
--   -1  no such reservation: nothing changed
local refused = not_held(KEYS[2])
if refused then
  return refused
end
local items = cjson.decode(redis.call('HGET', KEYS[2], 'items'))
for _, line in ipairs(items) do
  give_back(KEYS[1], KEYS[4], line[1], line[2])
end
redis.call('HSET', KEYS[2], 'status', 'RELEASED')
redis.call('ZREM', KEYS[3], ARGV[1])
return 1
