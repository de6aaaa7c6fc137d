-- reservation.lua: the status guard shared by the scripts that change a HELD
-- reservation (confirm.lua, extend.lua, release.lua).
-- Not a script of its own: app/lua/__init__.py prepends it to the scripts that
-- declare "-- uses: reservation.lua", so every script stays one atomic EVALSHA.
-- Lua 5.1 (Redis and fakeredis/lupa agree on it).

-- The refusal reply for a reservation that is not HELD, or nil when it is HELD:
--   -1  no such reservation
--    0  not HELD (already CONFIRMED or RELEASED)
local function not_held(res_key)
  local status = redis.call('HGET', res_key, 'status')
  if not status then
    return -1
  end
  if status ~= 'HELD' then
    return 0
  end
  return nil
end
