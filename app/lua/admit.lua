-- admit.lua: the submit path in one atomic call. Claims the idempotency key, holds
-- every line (all or nothing), writes the checkout read model and queues the
-- submission in {shop}:pending. A refused submit writes nothing at all.
-- uses: stock.lua
--
-- KEYS[1]  {shop}:avail
-- KEYS[2]  {shop}:res:<reservationId>
-- KEYS[3]  {shop}:holds
-- KEYS[4]  {shop}:idem:<sha256(idempotency key)>
-- KEYS[5]  {shop}:co:<orderId>
-- KEYS[6]  {shop}:pending
-- ARGV[1]  request fingerprint (sha256 hex of the canonical validated body)
-- ARGV[2]  the 202 response body, JSON
-- ARGV[3]  order id
-- ARGV[4]  reservation id
-- ARGV[5]  hold expiresAt, unix seconds
-- ARGV[6]  now, unix seconds (the pending score)
-- ARGV[7]  reservation record TTL, seconds
-- ARGV[8]  idempotency claim TTL, seconds
-- ARGV[9]  read model TTL, seconds
-- ARGV[10] n: the number of read-model arguments that follow (field, value, ...)
-- ARGV[11 .. 10+n]  read-model field, value pairs
-- ARGV[11+n ..]     sku, quantity pairs (a repeated SKU is summed)
--
-- Returns:
--   {'OK'}                                   admitted: claim, hold, read model, pending written
--   {'REPLAY', response}                      same key, same fingerprint: the stored response
--   {'MISMATCH'}                              same key, other fingerprint: nothing changed
--   {'UNKNOWN', sku, ...}                     SKUs absent from {shop}:avail: nothing changed
--   {'SHORT', sku, requested, available, ...} not enough units: nothing changed
local claimed = redis.call('HMGET', KEYS[4], 'fingerprint', 'response')
if claimed[1] then
  if claimed[1] == ARGV[1] then
    return {'REPLAY', claimed[2]}
  end
  return {'MISMATCH'}
end

local n = tonumber(ARGV[10])
local order, want = parse_lines(ARGV, 11 + n)
local refused = check_lines(KEYS[1], order, want)
if refused then
  return refused
end

take_lines(KEYS[1], KEYS[2], KEYS[3], ARGV[4], ARGV[3], ARGV[5], ARGV[7], order, want)

redis.call('HSET', KEYS[4], 'fingerprint', ARGV[1], 'response', ARGV[2], 'orderId', ARGV[3])
redis.call('EXPIRE', KEYS[4], ARGV[8])

local fields = {}
for i = 11, 10 + n do
  fields[#fields + 1] = ARGV[i]
end
fields[#fields + 1] = 'version'
fields[#fields + 1] = '1'
redis.call('HSET', KEYS[5], unpack(fields))
redis.call('EXPIRE', KEYS[5], ARGV[9])

redis.call('ZADD', KEYS[6], ARGV[6], ARGV[3])
return {'OK'}
