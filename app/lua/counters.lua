-- counters.lua: helpers for scripts that move a SKU's stock counter (catalog.lua,
-- release.lua, restock.lua).
-- Not a script of its own: app/lua/__init__.py prepends it to the scripts that
-- declare "-- uses: counters.lua", so every script stays one atomic EVALSHA.
-- Lua 5.1 (Redis and fakeredis/lupa agree on it).
--
-- A sold SKU's counter lives in {shop}:avail; an inactive product's counter is parked
-- in {shop}:avail:inactive. The holds (stock.lua) read {shop}:avail only, so a parked
-- SKU is refused like an unknown one, while its count (on hand - confirmed - held)
-- is kept exact for the day it is sold again.

-- The SKU's count and the hash that holds it: the active one, else the inactive one,
-- else 0 and nil (the SKU has no counter yet).
local function read_counter(avail_key, inactive_key, sku)
  local value = redis.call('HGET', avail_key, sku)
  if value then
    return tonumber(value), avail_key
  end
  value = redis.call('HGET', inactive_key, sku)
  if value then
    return tonumber(value), inactive_key
  end
  return 0, nil
end

-- Put units back (a release, a restock) wherever the SKU's counter lives; a SKU with
-- no counter at all gets an active one, as before products could be inactive.
local function give_back(avail_key, inactive_key, sku, qty)
  local _, home = read_counter(avail_key, inactive_key, sku)
  redis.call('HINCRBY', home or avail_key, sku, qty)
end
