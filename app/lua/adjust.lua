-- adjust.lua: change one SKU's available units by a delta (admin stock change).
-- Refuses a change that would leave fewer units than are already held or sold,
-- so confirmed + held never exceeds stock on hand (I1).
--
-- KEYS[1]  {shop}:avail
-- ARGV[1]  sku
-- ARGV[2]  delta (integer, may be negative)
--
-- Returns:
--   {'OK', new_available}
--   {'NEGATIVE', current_available}   the change would go below zero: nothing changed
local current = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local after = current + tonumber(ARGV[2])
if after < 0 then
  return {'NEGATIVE', current}
end
redis.call('HSET', KEYS[1], ARGV[1], after)
return {'OK', after}
