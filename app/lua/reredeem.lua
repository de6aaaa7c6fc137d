-- reredeem.lua: an order that gave its promotion redemption back is paid after all (a
-- late payment sold its lines again): it holds the redemption again. No limit is checked
-- — the buyer has paid the discounted total — and it is idempotent: an order holds one.
--
-- KEYS[1]  {shop}:promo:<code>:orders   hash orderId -> buyer keys (space separated)
-- KEYS[2]  {shop}:promo:<code>:buyers   hash buyer key -> redemptions held
-- ARGV[1]  order id
-- ARGV[2]  the order's buyer keys, space separated
--
-- Returns 1 when the redemption was taken again, 0 when the order held it already.
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then
  return 0
end
for key in string.gmatch(ARGV[2], '%S+') do
  redis.call('HINCRBY', KEYS[2], key, 1)
end
return 1
