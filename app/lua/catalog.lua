-- catalog.lua: a catalog sync's stock changes, active flags and prices, all or nothing.
-- Refuses the whole batch when one change would leave fewer units than are already
-- held or sold (the single upsert's rule), so confirmed + held never exceeds stock on
-- hand (I1). An inactive SKU's counter moves to KEYS[2], where no hold reads it. The
-- prices land in KEYS[3] in the same step, where admit.lua checks a cart's total.
-- uses: counters.lua
--
-- KEYS[1]  {shop}:avail            hash sku -> units that may still be held (sold SKUs)
-- KEYS[2]  {shop}:avail:inactive   hash sku -> the same count for inactive SKUs
-- KEYS[3]  {shop}:price            hash sku -> unit price in minor units
-- ARGV[1..] sku, delta, active, price quads (each SKU once): delta an integer, may be
--           negative; active '1' (sold: counter in KEYS[1]), '0' (not sold: counter in
--           KEYS[2]) or '' (stays where it is; a SKU without a counter starts in KEYS[1]);
--           price the unit price in minor units, or '' (unchanged)
--
-- Returns:
--   {'OK', count, ...}             applied; the new count of each quad, in order
--   {'NEGATIVE', sku, free, ...}   changes that would go below zero: nothing changed
local refused = {'NEGATIVE'}
local plan = {}
for i = 1, #ARGV, 4 do
  local sku, delta, active = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local current, home = read_counter(KEYS[1], KEYS[2], sku)
  local after = current + delta
  if after < 0 then
    refused[#refused + 1] = sku
    refused[#refused + 1] = current
  end
  local target = home or KEYS[1]
  if active == '1' then
    target = KEYS[1]
  elseif active == '0' then
    target = KEYS[2]
  end
  plan[#plan + 1] = {sku, after, target, ARGV[i + 3]}
end
if #refused > 1 then
  return refused
end

local counts = {'OK'}
for _, step in ipairs(plan) do
  local sku, after, target, price = step[1], step[2], step[3], step[4]
  local other = KEYS[2]
  if target == KEYS[2] then
    other = KEYS[1]
  end
  redis.call('HDEL', other, sku)
  redis.call('HSET', target, sku, after)
  if price ~= '' then
    redis.call('HSET', KEYS[3], sku, price)
  end
  counts[#counts + 1] = after
end
return counts
