-- rehold.lua: sell again the lines of a RELEASED reservation, all or nothing: a payment
-- that succeeded after its hold was released (late payments made whole). The units are
-- taken from {shop}:avail like a hold's and the reservation goes straight to CONFIRMED,
-- so confirmed + held never exceeds stock on hand (I1).
-- uses: stock.lua
--
-- KEYS[1]  {shop}:avail                 hash sku -> units that may still be held
-- KEYS[2]  {shop}:res:<reservationId>   the reservation record (may be gone: TTL)
-- KEYS[3]  {shop}:holds                 zset reservationId -> expiresAt
-- ARGV[1]  reservation id
-- ARGV[2]  order id
-- ARGV[3]  record TTL in seconds
-- ARGV[4..] sku, quantity pairs (a repeated SKU is summed)
--
-- Returns:
--   {'OK'}                                   units taken (or a HELD record sold), CONFIRMED
--   {'EXISTS', 'CONFIRMED'}                   already sold (a retry): nothing changed
--   {'UNKNOWN', sku, ...}                     SKUs absent from {shop}:avail: nothing changed
--   {'SHORT', sku, requested, available, ...} not enough units: nothing changed
local status = redis.call('HGET', KEYS[2], 'status')
if status == 'CONFIRMED' then
  return {'EXISTS', status}
end
if status == 'HELD' then
  -- Its units are still taken: selling them is a confirm.
  redis.call('HSET', KEYS[2], 'status', 'CONFIRMED')
  redis.call('ZREM', KEYS[3], ARGV[1])
  return {'OK'}
end
local order, want = parse_lines(ARGV, 4)
local refused = check_lines(KEYS[1], order, want)
if refused then
  return refused
end
local items = {}
for _, sku in ipairs(order) do
  redis.call('HINCRBY', KEYS[1], sku, -want[sku])
  items[#items + 1] = {sku, want[sku]}
end
redis.call('HSET', KEYS[2], 'status', 'CONFIRMED', 'items', cjson.encode(items),
           'orderId', ARGV[2])
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('ZREM', KEYS[3], ARGV[1])
return {'OK'}
