-- restock.lua: put units back on sale (a refund with restock), every line at once.
-- uses: counters.lua
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:avail:inactive   (an inactive product's units go back there)
-- KEYS[3]  {shop}:res:<reservationId>, optional: the reservation these units were sold
--          from, returned whole (a voided or lapsed authorisation). Its record follows
--          the database, CONFIRMED -> RELEASED, in this same call: a late payment's
--          rehold.lua then takes the units again instead of answering "already sold".
-- ARGV[1..] sku, quantity pairs (quantities > 0; none when only the record changes)
--
-- Returns: the number of lines applied.
local n = 0
for i = 1, #ARGV, 2 do
  give_back(KEYS[1], KEYS[2], ARGV[i], tonumber(ARGV[i + 1]))
  n = n + 1
end
if KEYS[3] and redis.call('HGET', KEYS[3], 'status') == 'CONFIRMED' then
  redis.call('HSET', KEYS[3], 'status', 'RELEASED')
end
return n
