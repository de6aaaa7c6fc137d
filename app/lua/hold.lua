-- hold.lua: hold every line of a reservation, all or nothing.
-- uses: stock.lua
--
-- KEYS[1]  {shop}:avail                 hash sku -> units that may still be held
-- KEYS[2]  {shop}:res:<reservationId>   the reservation record
-- KEYS[3]  {shop}:holds                 zset reservationId -> expiresAt
-- ARGV[1]  reservation id
-- ARGV[2]  order id (may be empty)
-- ARGV[3]  expiresAt, unix seconds
-- ARGV[4]  record TTL in seconds (hold TTL + 7 days)
-- ARGV[5..] sku, quantity pairs (a repeated SKU is summed)
--
-- Returns:
--   {'OK'}                                   units taken, reservation HELD
--   {'EXISTS', status}                        this reservation id was seen before: nothing changed
--   {'UNKNOWN', sku, ...}                     SKUs absent from {shop}:avail: nothing changed
--   {'SHORT', sku, requested, available, ...} not enough units: nothing changed
local status = redis.call('HGET', KEYS[2], 'status')
if status then
  return {'EXISTS', status}
end
local order, want = parse_lines(ARGV, 5)
local refused = check_lines(KEYS[1], order, want)
if refused then
  return refused
end
take_lines(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV[2], ARGV[3], ARGV[4], order, want)
return {'OK'}
