-- Sliding-window log (mirrors window.rs). KEYS[1] is a sorted set of the requests admitted
-- in the last window, scored by their time in microseconds of Redis TIME, so every node
-- shares one clock. ARGV[1]: limit, ARGV[2]: window us, ARGV[3]: a member id unique to
-- this call (two admissions in the same microsecond stay two entries).
-- Returns {allowed (0/1), entries after the decision, retry us, reset us}.
-- Timestamps (~1.8e15 us) are exact in a Lua double; they are written with %d, never with
-- the default number-to-string conversion, which keeps only 14 digits.
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
-- An entry at exactly now - window has left the window.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now - window))
local n = redis.call('ZCARD', KEYS[1])
local allowed, retry = 0, 0
if n < limit then
  local ts = string.format('%d', now)
  redis.call('ZADD', KEYS[1], ts, ts .. ':' .. ARGV[3])
  n = n + 1
  allowed = 1
else
  -- Enough must leave that limit - 1 remain: the entry at n - limit is the last of them.
  local at = redis.call('ZRANGE', KEYS[1], n - limit, n - limit, 'WITHSCORES')
  retry = tonumber(at[2]) + window - now
end
local newest = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
local reset = tonumber(newest[2]) + window - now
if allowed == 1 then
  -- An empty log means the same as none, so the key can go once the newest entry leaves.
  redis.call('PEXPIRE', KEYS[1], string.format('%d', math.ceil(reset / 1000)))
end
return {allowed, n, retry, reset}
