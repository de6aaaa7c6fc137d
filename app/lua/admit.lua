-- admit.lua: the submit path in one atomic call. Counts the client's request against
-- its rate limit, claims the idempotency key, holds every line (all or nothing), writes
-- the checkout read model and queues the submission in {shop}:pending. A refused submit
-- writes nothing but its rate-limit count.
-- uses: stock.lua
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:res:<reservationId>
-- KEYS[3]  {shop}:holds
-- KEYS[4]  {shop}:idem:<sha256(idempotency key)>
-- KEYS[5]  {shop}:co:<orderId>
-- KEYS[6]  {shop}:pending
-- KEYS[7]  {shop}:ratelimit:submit:<client ip>   fixed-window request counter
-- KEYS[8]  {shop}:price            hash sku -> unit price (written by catalog.lua)
-- ARGV[1]  request fingerprint (sha256 hex of the canonical validated body)
-- ARGV[2]  the 202 response body, JSON
-- ARGV[3]  order id
-- ARGV[4]  reservation id
-- ARGV[5]  hold expiresAt, unix seconds
-- ARGV[6]  now, unix seconds (the pending score)
-- ARGV[7]  reservation record TTL, seconds
-- ARGV[8]  idempotency claim TTL, seconds
-- ARGV[9]  read model TTL, seconds
-- ARGV[10] rate limit: requests per window (0: no limit)
-- ARGV[11] rate limit window, seconds
-- ARGV[12] the caller (sha256 of the JWT's user; "" for a guest): a replay to another
--          caller is told so, and the endpoint leaves the checkout token out of it
-- ARGV[13] the most one payment may take, minor units (0: no total check)
-- ARGV[14] tax rate for the destination, basis points (per line, rounded half up)
-- ARGV[15] shipping for the destination, minor units
-- ARGV[16] subtotal from which shipping is free (-1: never)
-- ARGV[17] n: the number of read-model arguments that follow (field, value, ...)
-- ARGV[18 .. 17+n]  read-model field, value pairs
-- ARGV[18+n ..]     sku, quantity pairs (a repeated SKU is summed)
--
-- Returns {used, ttl, outcome...}: `used` requests of the window so far (0 without a
-- limit), `ttl` seconds until the window resets, then one of
--   'OK'                                   admitted: claim, hold, read model, pending written
--   'REPLAY', response, same caller (1|0|2)  same key, same fingerprint: the stored
--                                          response; 2: its first delivery (the admission
--                                          was answered 503 for want of a replica's
--                                          acknowledgement, so nobody has its token yet)
--   'LIMITED'                              over the rate limit: nothing else done
--   'MISMATCH'                             same key, other fingerprint: nothing changed
--   'UNKNOWN', sku, ...                    SKUs absent from {shop}:avail: nothing changed
--   'TOO_LARGE', total                     the priced total exceeds ARGV[13]: nothing changed
--   'SHORT', sku, requested, available, ...   not enough units: nothing changed
-- The cart's total as app/services/pricing.py computes it with its table strategies
-- (per-line tax rounded half up, flat shipping waived from a subtotal), over the lines
-- whose SKU has a price in price_key; nil when within `limit`. Lines without a price
-- are left to the worker's exact pricing. Stops adding once the subtotal alone is over,
-- so every product stays far below 2^53 (exact in Lua's doubles).
local function total_over(price_key, argv, first, order, limit, tax_bp, shipping, free_over)
  local found = redis.call('HMGET', price_key, unpack(order))
  local prices = {}
  for i, sku in ipairs(order) do
    prices[sku] = found[i]
  end
  local subtotal, tax, priced = 0, 0, false
  for i = first, #argv, 2 do
    local price = prices[argv[i]]
    if price then
      priced = true
      local amount = tonumber(price) * tonumber(argv[i + 1])
      subtotal = subtotal + amount
      if subtotal > limit then
        return subtotal
      end
      local scaled = amount * tax_bp
      local line_tax = math.floor(scaled / 10000)
      if (scaled - line_tax * 10000) * 2 >= 10000 then
        line_tax = line_tax + 1
      end
      tax = tax + line_tax
    end
  end
  if not priced then
    return nil
  end
  if free_over >= 0 and subtotal >= free_over then
    shipping = 0
  end
  local total = subtotal + tax + shipping
  if total > limit then
    return total
  end
  return nil
end

local used, ttl = 0, 0
local limit = tonumber(ARGV[10])
if limit > 0 then
  used = redis.call('INCR', KEYS[7])
  if used == 1 then
    redis.call('EXPIRE', KEYS[7], ARGV[11])
  end
  ttl = redis.call('TTL', KEYS[7])
  if used > limit then
    return {used, ttl, 'LIMITED'}
  end
end

local claimed = redis.call('HMGET', KEYS[4], 'fingerprint', 'response', 'caller', 'unanswered')
if claimed[1] then
  if claimed[1] == ARGV[1] then
    if claimed[4] then
      redis.call('HDEL', KEYS[4], 'unanswered')
      return {used, ttl, 'REPLAY', claimed[2], 2}
    end
    return {used, ttl, 'REPLAY', claimed[2], claimed[3] == ARGV[12] and 1 or 0}
  end
  return {used, ttl, 'MISMATCH'}
end

local n = tonumber(ARGV[17])
local order, want = parse_lines(ARGV, 18 + n)
local refused = check_lines(KEYS[1], order, want)
-- Unknown SKUs first, then a total no payment can take (bad input), then stock.
if not (refused and refused[1] == 'UNKNOWN') and tonumber(ARGV[13]) > 0 then
  local total = total_over(KEYS[8], ARGV, 18 + n, order, tonumber(ARGV[13]),
    tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]))
  if total then
    return {used, ttl, 'TOO_LARGE', total}
  end
end
if refused then
  table.insert(refused, 1, ttl)
  table.insert(refused, 1, used)
  return refused
end

take_lines(KEYS[1], KEYS[2], KEYS[3], ARGV[4], ARGV[3], ARGV[5], ARGV[7], order, want)

redis.call('HSET', KEYS[4], 'fingerprint', ARGV[1], 'response', ARGV[2], 'orderId', ARGV[3],
  'caller', ARGV[12])
redis.call('EXPIRE', KEYS[4], ARGV[8])

local fields = {}
for i = 18, 17 + n do
  fields[#fields + 1] = ARGV[i]
end
fields[#fields + 1] = 'version'
fields[#fields + 1] = '1'
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('EXPIRE', KEYS[5], ARGV[9])

redis.call('ZADD', KEYS[6], ARGV[6], ARGV[3])
return {used, ttl, 'OK'}
