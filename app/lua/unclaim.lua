-- unclaim.lua: give a claim back only while it is still the caller's (compare and delete).
-- A worker whose claim lapsed (TTL) must not free the claim a newer request took since.
--
-- KEYS[1]  the claim (e.g. {shop}:confirming:<orderId>)
-- ARGV[1]  the value the caller took it with
--
-- Returns: 1 when given back, 0 when the key is gone or holds another value.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
