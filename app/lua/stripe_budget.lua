-- stripe_budget.lua: the fleet's shared Stripe request budget, a sliding one-second
-- window whose size adapts (AIMD): on a 429 it becomes half of what the last second
-- actually used (at most once a second: the budget was too high for that), and quiet
-- seconds grow it back by a tenth of the ceiling each. No span of 1,000 ms ever holds more
-- grants than the budget in force, so a per-second limiter at Stripe never trips.
--
-- A grant may be reserved ahead ('reserve'): recorded at the earliest time the window has
-- room for it, never before the latest grant, so waiting callers queue in order and each
-- asks once (polling callers all asked again when one slot came free: ~3 more round
-- trips per Stripe call with the budget full).
--
-- KEYS[1]  {shop}:stripe:window   zset member -> grant time (ms); the last second's grants
--                                 and those reserved ahead (never more than ARGV[5] ahead)
-- KEYS[2]  {shop}:stripe:budget   hash `rate` (float, grants per second), `ts` (ms, last
--                                 adjustment), `penalized` (ms, last decrease)
-- ARGV[1]  now, milliseconds (the callers' clock: one clock per fleet, injectable in tests)
-- ARGV[2]  ceiling: grants per second when nothing went wrong (>= 1)
-- ARGV[3]  mode: 'acquire' | 'reserve' | 'penalize' | 'peek'
-- ARGV[4]  acquire, reserve: a unique member for this grant
-- ARGV[5]  reserve: the longest wait, milliseconds, the caller accepts
--
-- Returns:
--   acquire   0 when granted now (recorded in the window); otherwise the milliseconds
--             until the window may have room (nothing recorded)
--   reserve   the milliseconds from now to the grant (0: now), recorded at that time; -1
--             when the grant would be more than ARGV[5] ms away (nothing recorded)
--   penalize  the budget after the decrease, whole grants per second
--   peek      the budget in force, whole grants per second
-- Lua 5.1 compatible.

local now = tonumber(ARGV[1])
local ceiling = tonumber(ARGV[2])
local mode = ARGV[3]
local floor_rate = 1
local grow_per_second = ceiling / 10

local state = redis.call('HMGET', KEYS[2], 'rate', 'ts', 'penalized')
local rate = tonumber(state[1]) or ceiling
local ts = tonumber(state[2]) or now
local penalized = tonumber(state[3]) or 0
if now > ts then
  rate = rate + (now - ts) / 1000 * grow_per_second
  ts = now
end
if rate > ceiling then
  rate = ceiling
end

local function save()
  redis.call('HSET', KEYS[2], 'rate', tostring(rate), 'ts', tostring(ts), 'penalized', tostring(penalized))
  redis.call('PEXPIRE', KEYS[2], 3600000)
end

if mode == 'penalize' then
  -- Several calls of one burst see the same 429s: decrease once per second.
  if now - penalized >= 1000 then
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1000)
    local used = redis.call('ZCOUNT', KEYS[1], '-inf', now)  -- not those reserved ahead
    rate = math.max(floor_rate, math.min(rate, math.max(used, 1)) / 2)
    penalized = now
  end
  save()
  return math.floor(rate)
end

local allowed = math.max(floor_rate, math.floor(rate))
if mode == 'peek' then
  -- Read only: a process with another ceiling (a web with an older setting) must not
  -- cut the workers' budget by looking at it.
  return allowed
end

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 1000)
save()
-- The earliest grant time: not before the latest grant (reservations stay in order), and
-- with the window ending there holding fewer than `allowed` grants — the one that makes
-- it one too full has left it (a member is trimmed once 1,000 ms old).
local at = now
local used = redis.call('ZCARD', KEYS[1])
if used > 0 then
  local latest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  at = math.max(at, tonumber(latest[2]))
end
if used >= allowed then
  local leaving = redis.call('ZRANGE', KEYS[1], used - allowed, used - allowed, 'WITHSCORES')
  at = math.max(at, tonumber(leaving[2]) + 1000)
end
if mode == 'acquire' and at > now then
  return at - now
end
if mode == 'reserve' and at - now > tonumber(ARGV[5]) then
  return -1
end
redis.call('ZADD', KEYS[1], at, ARGV[4])
redis.call('PEXPIRE', KEYS[1], at - now + 2000)
return at - now
