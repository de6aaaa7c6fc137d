-- token_bucket.lua: one shared token bucket (Stripe's account-wide request rate).
--
-- KEYS[1]  the bucket hash ({shop}:stripe:bucket): fields `tokens` (float), `ts` (ms)
-- ARGV[1]  refill rate, tokens per second (> 0)
-- ARGV[2]  capacity (burst size, >= 1)
--
-- Returns: 0 when a token was taken; otherwise the milliseconds to wait before
--          trying again (no token taken)
--
-- The server's clock (TIME) is the only clock, so workers on different hosts agree.
-- Lua 5.1 compatible.

local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1]) or capacity
local ts = tonumber(state[2]) or now
if now > ts then
  tokens = math.min(capacity, tokens + (now - ts) * rate / 1000)
end

local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
else
  wait = math.ceil((1 - tokens) * 1000 / rate)
end

redis.call('HSET', KEYS[1], 'tokens', tostring(tokens))
redis.call('HSET', KEYS[1], 'ts', tostring(math.max(now, ts)))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 1000 / rate) + 1000)
return wait
