-- admit.lua: the submit path in one atomic call. Counts the client's request against
-- its rate limit, claims the idempotency key, holds every line (all or nothing), redeems
-- the promotion code (if any), writes the checkout read model (with the code's terms) and
-- queues the submission in {shop}:pending and, when given one, the worker's
-- create_payment_intent message in Dramatiq's queue (the submit's only round trip). A
-- refused submit writes nothing but its rate-limit count (and the day's submit counts for
-- the dashboard).
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
-- KEYS[9]  {shop}:promo:<code>      hash: terms (JSON), active, startsAt, endsAt (unix s),
--                                   minSubtotal, max, perBuyer ('' = none)
-- KEYS[10] {shop}:promo:<code>:orders   hash orderId -> buyer keys: redemptions held
-- KEYS[11] {shop}:promo:<code>:buyers   hash buyer key -> redemptions held
-- KEYS[12] {shop}:stats:<YYYY-MM-DD>    hash: the UTC day's `submits` (judged here, replays
--                                   and rate-limited requests aside), `admitted`, `out_of_stock`
-- KEYS[13] dramatiq:<queue>.msgs   Dramatiq's hash message id -> encoded message } only with
-- KEYS[14] dramatiq:<queue>        Dramatiq's list of message ids to consume     } ARGV[20]
--                                  (app/gateways/jobs.py owns this layout: ScriptedMessage)
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
-- ARGV[17] promotion code ('' = none; KEYS[9..11] are then unused)
-- ARGV[18] the buyer's keys for the per-buyer limit, space separated (e-mail, user id)
-- ARGV[19] the day's counts' TTL, seconds (set when the day's hash is created)
-- ARGV[20] the Dramatiq message's redis_message_id ('' = none: the caller enqueues after)
-- ARGV[21] the encoded Dramatiq message (written as dispatch.lua's enqueue: HSET, RPUSH)
-- ARGV[22] n: the number of read-model arguments that follow (field, value, ...)
-- ARGV[23 .. 22+n]  read-model field, value pairs
-- ARGV[23+n ..]     sku, quantity pairs (a repeated SKU is summed)
--
-- Returns {used, ttl, outcome...}: `used` requests of the window so far (0 without a
-- limit), `ttl` seconds until the window resets, then one of
--   'OK'                                   admitted: claim, hold, read model, pending (and the
--                                          message) written
--   'REPLAY', response, same caller (1|0|2)  same key, same fingerprint: the stored
--                                          response; 2: its first delivery (the admission
--                                          was answered 503 for want of a replica's
--                                          acknowledgement, so nobody has its token yet)
--   'LIMITED'                              over the rate limit: nothing else done
--   'MISMATCH'                             same key, other fingerprint: nothing changed
--   'UNKNOWN', sku, ...                    SKUs absent from {shop}:avail: nothing changed
--   'TOO_LARGE', total                     the priced total exceeds ARGV[13]: nothing changed
--   'PROMO_INVALID', reason                unknown | inactive | not_yet_valid | expired |
--                                          minimum: nothing changed
--   'SHORT', sku, requested, available, ...   not enough units: nothing changed
--   'PROMO_UNAVAILABLE', reason            used_up | buyer_limit: nothing changed
-- Order of refusals: unknown SKUs, a total no payment can take, the code's terms (bad
-- input, 400), then stock and the code's redemptions (409).
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

-- The goods subtotal from price_key, or nil when a line has no price there (the
-- minimum is then left as met: the worker prices with the terms admission saw).
local function goods_subtotal(price_key, argv, first, order)
  local found = redis.call('HMGET', price_key, unpack(order))
  local prices = {}
  for i, sku in ipairs(order) do
    prices[sku] = found[i]
  end
  local subtotal = 0
  for i = first, #argv, 2 do
    local price = prices[argv[i]]
    if not price then
      return nil
    end
    subtotal = subtotal + tonumber(price) * tonumber(argv[i + 1])
  end
  return subtotal
end

-- Why the code in KEYS[9] does not apply now (nil: it does); its fields otherwise.
local function promo_terms(now, first, order)
  local t = redis.call('HMGET', KEYS[9], 'terms', 'active', 'startsAt', 'endsAt',
    'minSubtotal', 'max', 'perBuyer')
  if not t[1] then
    return 'unknown'
  end
  if t[2] ~= '1' then
    return 'inactive'
  end
  if t[3] ~= '' and now < tonumber(t[3]) then
    return 'not_yet_valid'
  end
  if t[4] ~= '' and now >= tonumber(t[4]) then
    return 'expired'
  end
  if t[5] ~= '' then
    local subtotal = goods_subtotal(KEYS[8], ARGV, first, order)
    if subtotal and subtotal < tonumber(t[5]) then
      return 'minimum'
    end
  end
  return nil, t
end

-- 'used_up' or 'buyer_limit' when no redemption is left for these buyer keys; else nil.
local function promo_unavailable(terms, buyer_keys)
  if terms[6] ~= '' and redis.call('HLEN', KEYS[10]) >= tonumber(terms[6]) then
    return 'used_up'
  end
  if terms[7] ~= '' then
    for key in string.gmatch(buyer_keys, '%S+') do
      local held = tonumber(redis.call('HGET', KEYS[11], key) or '0')
      if held >= tonumber(terms[7]) then
        return 'buyer_limit'
      end
    end
  end
  return nil
end

-- The dashboard's count of the day: one HINCRBY in this call, never a round trip more.
local function count(field)
  if redis.call('HINCRBY', KEYS[12], field, 1) == 1 and field == 'submits' then
    redis.call('EXPIRE', KEYS[12], ARGV[19])
  end
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
count('submits')

local n = tonumber(ARGV[22])
local first = 23 + n
local order, want = parse_lines(ARGV, first)
local refused = check_lines(KEYS[1], order, want)
local unknown = refused and refused[1] == 'UNKNOWN'
-- Unknown SKUs first, then a total no payment can take (bad input), then stock.
if not unknown and tonumber(ARGV[13]) > 0 then
  local total = total_over(KEYS[8], ARGV, first, order, tonumber(ARGV[13]),
    tonumber(ARGV[14]), tonumber(ARGV[15]), tonumber(ARGV[16]))
  if total then
    return {used, ttl, 'TOO_LARGE', total}
  end
end
local promo = nil
if not unknown and ARGV[17] ~= '' then
  local invalid, terms = promo_terms(tonumber(ARGV[6]), first, order)
  if invalid then
    return {used, ttl, 'PROMO_INVALID', invalid}
  end
  promo = terms
end
if refused then
  if refused[1] == 'SHORT' then
    count('out_of_stock')
  end
  table.insert(refused, 1, ttl)
  table.insert(refused, 1, used)
  return refused
end
if promo then
  local unavailable = promo_unavailable(promo, ARGV[18])
  if unavailable then
    return {used, ttl, 'PROMO_UNAVAILABLE', unavailable}
  end
end

take_lines(KEYS[1], KEYS[2], KEYS[3], ARGV[4], ARGV[3], ARGV[5], ARGV[7], order, want)
if promo then
  redis.call('HSET', KEYS[10], ARGV[3], ARGV[18])
  for key in string.gmatch(ARGV[18], '%S+') do
    redis.call('HINCRBY', KEYS[11], key, 1)
  end
end

redis.call('HSET', KEYS[4], 'fingerprint', ARGV[1], 'response', ARGV[2], 'orderId', ARGV[3],
  'caller', ARGV[12])
redis.call('EXPIRE', KEYS[4], ARGV[8])

local fields = {}
for i = 23, 22 + n do
  fields[#fields + 1] = ARGV[i]
end
if promo then
  -- The terms as admission saw them travel with the submission: the worker prices
  -- with them, whatever the code's terms are by then.
  fields[#fields + 1] = 'promotion'
  fields[#fields + 1] = promo[1]
end
fields[#fields + 1] = 'version'
fields[#fields + 1] = '1'
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('EXPIRE', KEYS[5], ARGV[9])

redis.call('ZADD', KEYS[6], ARGV[6], ARGV[3])
if ARGV[20] ~= '' then
  -- The worker's message, exactly as Dramatiq's enqueue writes it. A sender's heartbeat
  -- (dispatch.lua's ZADD) is left out: only a consumer's acknowledgements need one.
  redis.call('HSET', KEYS[13], ARGV[20], ARGV[21])
  redis.call('RPUSH', KEYS[14], ARGV[20])
end
count('admitted')
return {used, ttl, 'OK'}
