-- promo_rebuild.lua: one promotion's Redis state from the database (I9), in one call:
-- the terms, and the redemptions held — the orders the database lists (with the code,
-- not FAILED or CANCELED) plus those admitted but not written yet (still in
-- {shop}:pending, known to Redis only); the per-buyer counts recomputed from them.
--
-- KEYS[1]  {shop}:promo:<code>          hash: the terms (as admit.lua reads them)
-- KEYS[2]  {shop}:promo:<code>:orders   hash orderId -> buyer keys
-- KEYS[3]  {shop}:promo:<code>:buyers   hash buyer key -> redemptions held
-- KEYS[4]  {shop}:pending               zset orderId -> submitted at
-- ARGV[1]  n: the number of terms arguments that follow (field, value, ...)
-- ARGV[2 .. 1+n]   terms field, value pairs
-- ARGV[2+n ..]     orderId, buyer keys pairs from the database
--
-- Returns the number of redemptions held afterwards.
local held = {}
local current = redis.call('HGETALL', KEYS[2])
for i = 1, #current, 2 do
  if redis.call('ZSCORE', KEYS[4], current[i]) then
    held[current[i]] = current[i + 1]
  end
end
local n = tonumber(ARGV[1])
for i = 2 + n, #ARGV, 2 do
  held[ARGV[i]] = ARGV[i + 1]
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
local terms = {}
for i = 2, 1 + n do
  terms[#terms + 1] = ARGV[i]
end
redis.call('HSET', KEYS[1], unpack(terms))
local count = 0
for order_id, buyer_keys in pairs(held) do
  count = count + 1
  redis.call('HSET', KEYS[2], order_id, buyer_keys)
  for key in string.gmatch(buyer_keys, '%S+') do
    redis.call('HINCRBY', KEYS[3], key, 1)
  end
end
return count
