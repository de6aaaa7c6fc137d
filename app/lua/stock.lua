-- stock.lua: helpers shared by the stock scripts (hold.lua, admit.lua).
-- Not a script of its own: app/lua/__init__.py prepends it to the scripts that
-- declare "-- uses: stock.lua", so every script stays one atomic EVALSHA.
-- Lua 5.1 (Redis and fakeredis/lupa agree on it).

-- Read sku, qty pairs from argv[first..]; a repeated SKU is summed into one line.
-- Returns the SKUs in first-seen order and a map sku -> total quantity.
local function parse_lines(argv, first)
  local order, want = {}, {}
  for i = first, #argv, 2 do
    local sku = argv[i]
    local qty = tonumber(argv[i + 1])
    if want[sku] == nil then
      order[#order + 1] = sku
      want[sku] = 0
    end
    want[sku] = want[sku] + qty
  end
  return order, want
end

-- Check every line before touching anything (all or nothing).
-- Returns nil when all lines fit, else a refusal reply:
--   {'UNKNOWN', sku, ...}                          SKUs absent from the avail hash
--   {'SHORT', sku, requested, available, ...}       lines asking for more than is left
local function check_lines(avail_key, order, want)
  local have = redis.call('HMGET', avail_key, unpack(order))
  local unknown, short = {'UNKNOWN'}, {'SHORT'}
  for i, sku in ipairs(order) do
    if not have[i] then
      unknown[#unknown + 1] = sku
    else
      local left = tonumber(have[i])
      if left < want[sku] then
        short[#short + 1] = sku
        short[#short + 1] = want[sku]
        short[#short + 1] = math.max(left, 0)
      end
    end
  end
  if #unknown > 1 then return unknown end
  if #short > 1 then return short end
  return nil
end

-- Take the units and record the reservation as HELD, indexed by expiry.
local function take_lines(avail_key, res_key, holds_key, res_id, order_id, expires_at,
                          record_ttl, order, want)
  local items = {}
  for _, sku in ipairs(order) do
    redis.call('HINCRBY', avail_key, sku, -want[sku])
    items[#items + 1] = {sku, want[sku]}
  end
  redis.call('HSET', res_key, 'status', 'HELD', 'items', cjson.encode(items),
             'orderId', order_id, 'expiresAt', expires_at)
  redis.call('EXPIRE', res_key, record_ttl)
  redis.call('ZADD', holds_key, expires_at, res_id)
end
