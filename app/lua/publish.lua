-- publish.lua: update the checkout read model and wake its long-pollers.
--
-- KEYS[1]  {shop}:co:<orderId>
-- KEYS[2]  {shop}:co:<orderId>:changed   (pub/sub channel)
-- ARGV[1]  TTL in seconds, applied only when the hash has none (a fresh hash)
-- ARGV[2..] field, value pairs to set (may be empty)
--
-- Returns: the new version (integer).
if #ARGV > 1 then
  local fields = {}
  for i = 2, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  redis.call('HSET', KEYS[1], unpack(fields))
end
local version = redis.call('HINCRBY', KEYS[1], 'version', 1)
if redis.call('TTL', KEYS[1]) < 0 then
  redis.call('EXPIRE', KEYS[1], ARGV[1])
end
redis.call('PUBLISH', KEYS[2], version)
return version
