-- Sliding-window log (mirrors Limit::check in mod.rs), shared by rate_limit.lua and limited_apply.lua.
-- `key` is a sorted set of the requests admitted in the last window, scored by their time in
-- microseconds of Redis TIME, so every node shares one clock. `limit` and `window` (us) are
-- numbers; `member` is unique to the call (two admissions in the same microsecond stay two
-- entries). Returns {allowed (0/1), entries after the decision, retry us, reset us}; a
-- refusal records nothing.
-- Timestamps (~1.8e15 us) are exact in a Lua double; they are written with %d, never with
-- the default number-to-string conversion, which keeps only 14 digits.
redis.replicate_commands()
local function rate_window(key, limit, window, member)
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  -- An entry at exactly now - window has left the window.
  redis.call('ZREMRANGEBYSCORE', key, '-inf', string.format('%d', now - window))
  local n = redis.call('ZCARD', key)
  local allowed, retry = 0, 0
  if n < limit then
    local ts = string.format('%d', now)
    redis.call('ZADD', key, ts, ts .. ':' .. member)
    n = n + 1
    allowed = 1
  else
    -- Enough must leave that limit - 1 remain: the entry at n - limit is the last of them.
    local at = redis.call('ZRANGE', key, n - limit, n - limit, 'WITHSCORES')
    retry = tonumber(at[2]) + window - now
  end
  local newest = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
  local reset = tonumber(newest[2]) + window - now
  if allowed == 1 then
    -- An empty log means the same as none, so the key can go once the newest entry leaves.
    redis.call('PEXPIRE', key, string.format('%d', math.ceil(reset / 1000)))
  end
  return {allowed, n, retry, reset}
end
