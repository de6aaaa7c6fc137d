-- restock.lua: put units back on sale (a refund with restock), every line at once.
-- uses: counters.lua
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:avail:inactive   (an inactive product's units go back there)
-- ARGV[1..] sku, quantity pairs (quantities > 0)
--
-- Returns: the number of lines applied.
local n = 0
for i = 1, #ARGV, 2 do
  give_back(KEYS[1], KEYS[2], ARGV[i], tonumber(ARGV[i + 1]))
  n = n + 1
end
return n
