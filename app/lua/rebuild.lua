-- rebuild.lua: restore the stock counters from the database's numbers (I9).
--
-- The database knows on hand and its HELD reservations; Redis may also hold
-- submissions whose order row is not written yet. Those are subtracted too, so a
-- rebuild under live traffic never hands out units that are already held.
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:holds
-- KEYS[3]  {shop}:avail:inactive   the counters of inactive products (never held)
-- KEYS[4]  {shop}:price            unit prices, replaced by ARGV[6]
-- ARGV[1]  JSON {sku: on hand - confirmed - held (database)}
-- ARGV[2]  JSON [{id, orderId, items: [[sku, qty], ...], expiresAt}, ...] HELD in the database
-- ARGV[3]  record TTL in seconds for restored reservation records
-- ARGV[4]  key prefix, "{shop}:res:"
-- ARGV[5]  JSON [sku, ...] of inactive products: their counters go to KEYS[3]
-- ARGV[6]  JSON {sku: unit price in minor units} (database), for admit.lua's total
--          check; '' leaves KEYS[4] as it is
-- ARGV[7]  JSON {reservationId: 'CONFIRMED' | 'RELEASED'}: reservations still in
--          KEYS[2] that the database has already settled (optional, '' for none)
--
-- Returns: {skus written, Redis-only holds subtracted, reservation records restored,
--           records settled}
-- The prices are restored with the counters (a cart over Stripe's maximum is refused at
-- admission again).
local counts = cjson.decode(ARGV[1])
local db_held = cjson.decode(ARGV[2])
local known = {}
for _, res in ipairs(db_held) do
  known[res.id] = true
end

-- A record still HELD in Redis whose reservation the database has confirmed or released:
-- the confirm or release script was lost (a primary killed before it replicated). Its
-- units are already in ARGV[1] (on hand decremented, or back), so it is not subtracted
-- as a Redis-only hold; the record follows the database and leaves the holds.
local settled = 0
if ARGV[7] and ARGV[7] ~= '' then
  for res_id, status in pairs(cjson.decode(ARGV[7])) do
    known[res_id] = true
    local key = ARGV[4] .. res_id
    if redis.call('HGET', key, 'status') == 'HELD' then
      redis.call('HSET', key, 'status', status)
      settled = settled + 1
    end
    redis.call('ZREM', KEYS[2], res_id)
  end
end

-- Holds that exist only in Redis (order row not written yet) still hold units.
local extra = 0
for _, res_id in ipairs(redis.call('ZRANGE', KEYS[2], 0, -1)) do
  if not known[res_id] then
    local raw = redis.call('HGET', ARGV[4] .. res_id, 'items')
    if raw then
      extra = extra + 1
      for _, line in ipairs(cjson.decode(raw)) do
        if counts[line[1]] ~= nil then
          counts[line[1]] = counts[line[1]] - line[2]
        end
      end
    end
  end
end

-- Records lost with Redis come back, so a later confirm or release still works.
local restored = 0
for _, res in ipairs(db_held) do
  local key = ARGV[4] .. res.id
  if redis.call('EXISTS', key) == 0 then
    redis.call('HSET', key, 'status', 'HELD', 'items', cjson.encode(res.items),
               'orderId', res.orderId, 'expiresAt', res.expiresAt)
    redis.call('EXPIRE', key, ARGV[3])
    redis.call('ZADD', KEYS[2], res.expiresAt, res.id)
    restored = restored + 1
  end
end

local inactive = {}
for _, sku in ipairs(cjson.decode(ARGV[5])) do
  inactive[sku] = true
end

redis.call('DEL', KEYS[1], KEYS[3])
if ARGV[6] ~= '' then
  redis.call('DEL', KEYS[4])
  for sku, price in pairs(cjson.decode(ARGV[6])) do
    redis.call('HSET', KEYS[4], sku, price)
  end
end
local written = 0
for sku, n in pairs(counts) do
  if inactive[sku] then
    redis.call('HSET', KEYS[3], sku, n)
  else
    redis.call('HSET', KEYS[1], sku, n)
  end
  written = written + 1
end
return {written, extra, restored, settled}
