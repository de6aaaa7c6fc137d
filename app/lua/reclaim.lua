-- reclaim.lua: take units a refund put back on sale off sale again (the refund failed
-- after Stripe had said it succeeded), as many as are still free; once per marker.
-- uses: counters.lua
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:avail:inactive   (an inactive product's counter lives there)
-- KEYS[3]  {shop}:reclaim:<orderId>:<restockEventId>   the marker: the answer, kept for
--          ARGV[1] seconds, so a retried message takes nothing twice
-- ARGV[1]  the marker's TTL in seconds
-- ARGV[2..] sku, quantity pairs (quantities > 0)
--
-- Returns: a flat list sku, taken, ... (taken = min(quantity, the counter), never below
-- 0: units sold again meanwhile stay sold, held units stay held). A second call with the
-- same marker returns the first call's answer and changes nothing.
local done = redis.call('HGETALL', KEYS[3])
if #done > 0 then
  return done
end
local out = {}
for i = 2, #ARGV, 2 do
  local sku, qty = ARGV[i], tonumber(ARGV[i + 1])
  local count, home = read_counter(KEYS[1], KEYS[2], sku)
  local take = math.min(qty, math.max(count, 0))
  if take > 0 then
    redis.call('HINCRBY', home, sku, -take)
  end
  out[#out + 1] = sku
  out[#out + 1] = tostring(take)
  redis.call('HSET', KEYS[3], sku, take)
end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[1]))
return out
