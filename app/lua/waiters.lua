-- waiters.lua: count long-polls in flight, refusing one that would pass a cap.
--
-- KEYS[1]    {shop}:waiters:order:<orderId>
-- KEYS[2]    {shop}:waiters:credential:<token:hash | user:id>
-- KEYS[3]    {shop}:waiters:ip:<client ip>   (any number of such counters works)
-- ARGV[1]     mode: 'enter' | 'watch' | 'open' | 'take' | 'leave'
-- ARGV[2]     counter TTL, seconds (a crashed web process's counts lapse)
-- ARGV[3..]   enter, watch, open: the cap of each counter, in KEYS order
-- then        open: the presented checkout token's hash, and 'since' ('' = the model's
--             own version: wait for the next change)
-- ARGV[3]     take: the version the waiter already has ('since')
--
-- 'watch' is 'enter' for a long-poll already listening for the order's changes: its
-- LAST key is the order's read model ({shop}:co:<orderId>), not a counter, and once
-- admitted the script also answers the read model's version, so the waiter need not
-- re-read the whole model in another round trip to learn it has nothing new yet.
-- 'take' (the same keys as 'watch') is a woken or timed-out waiter's read: when the
-- read model is newer than ARGV[3] (or gone), it leaves and answers the model in the
-- same round trip; otherwise it changes nothing.
-- 'open' (the same keys as 'watch') is a long-poll's first read, once it listens: it
-- answers the whole model and, when the presented token's hash is the model's and the
-- model is not newer than 'since', enters the caps in that same round trip (the
-- credential counter must be the token's). Any other caller (a JWT, a wrong token: the
-- web checks access on the model it answers) is not counted here.
--
-- Returns:
--   enter   0 when admitted (every counter incremented); otherwise i, the 1-based
--           index of the first key at its cap (nothing changed)
--   watch   {0, version} when admitted (version -1: no read model); {i, -1} refused
--   open    {0, HGETALL of the model} when counted; {-1, HGETALL} when not (the model
--           empty: none); {i, HGETALL} refused at the i-th cap (nothing changed)
--   take    {1, HGETALL of the model (empty: none)} when left; {0} when not newer
--   leave   0 (every counter decremented, never below zero)
-- Lua 5.1 compatible.

local mode = ARGV[1]
local ttl = tonumber(ARGV[2])
local counters = #KEYS
if mode == 'watch' or mode == 'take' or mode == 'open' then
  counters = #KEYS - 1
end
local model = KEYS[#KEYS]

local function leave()
  for i = 1, counters do
    if (tonumber(redis.call('DECR', KEYS[i])) or 0) <= 0 then
      redis.call('DEL', KEYS[i])
    end
  end
end

-- The first counter at its cap (1-based), or 0 with every counter incremented.
local function enter()
  for i = 1, counters do
    if (tonumber(redis.call('GET', KEYS[i])) or 0) >= tonumber(ARGV[2 + i]) then
      return i
    end
  end
  for i = 1, counters do
    redis.call('INCR', KEYS[i])
    redis.call('EXPIRE', KEYS[i], ttl)
  end
  return 0
end

if mode == 'open' then
  local fields = redis.call('HGETALL', model)
  local stored = redis.call('HGET', model, 'tokenHash')
  local since = ARGV[4 + counters]
  local version = tonumber(redis.call('HGET', model, 'version')) or 0
  if not stored or stored == '' or stored ~= ARGV[3 + counters]
      or (since ~= '' and version > tonumber(since)) then
    return {-1, fields}
  end
  return {enter(), fields}
end
if mode == 'enter' or mode == 'watch' then
  local refused = enter()
  if refused > 0 then
    if mode == 'watch' then
      return {refused, -1}
    end
    return refused
  end
  if mode == 'enter' then
    return 0
  end
  if redis.call('EXISTS', model) == 0 then
    return {0, -1}
  end
  return {0, tonumber(redis.call('HGET', model, 'version')) or 0}
end
if mode == 'take' then
  if redis.call('EXISTS', model) == 1
      and (tonumber(redis.call('HGET', model, 'version')) or 0) <= tonumber(ARGV[3]) then
    return {0}
  end
  leave()
  return {1, redis.call('HGETALL', model)}
end
leave()
return 0
