-- unredeem.lua: give back an order's promotion redemption (the order ended FAILED or
-- CANCELED, or its submission was never written). Idempotent: the order's entry is
-- removed once, and only then are its buyers' counts lowered.
--
-- KEYS[1]  {shop}:promo:<code>:orders   hash orderId -> buyer keys (space separated)
-- KEYS[2]  {shop}:promo:<code>:buyers   hash buyer key -> redemptions held
-- ARGV[1]  order id
--
-- Returns 1 when a redemption was given back, 0 when the order held none (any more).
local buyer_keys = redis.call('HGET', KEYS[1], ARGV[1])
if not buyer_keys then
  return 0
end
redis.call('HDEL', KEYS[1], ARGV[1])
for key in string.gmatch(buyer_keys, '%S+') do
  if redis.call('HINCRBY', KEYS[2], key, -1) <= 0 then
    redis.call('HDEL', KEYS[2], key)
  end
end
return 1
