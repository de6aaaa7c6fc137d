-- restock.lua: put units back on sale (a refund with restock), every line at once.
--
-- KEYS[1]  {shop}:avail
-- ARGV[1..] sku, quantity pairs (quantities > 0)
--
-- Returns: the number of lines applied.
local n = 0
for i = 1, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], tonumber(ARGV[i + 1]))
  n = n + 1
end
return n
