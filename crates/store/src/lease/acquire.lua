-- Takes a slot in the pool KEYS[1] (a zset: member = holder, score = expiry in ms) for
-- ARGV[1], with capacity ARGV[2] and TTL ARGV[3] ms. Server time keeps all nodes agreeing.
-- Returns 1 when acquired (or renewed by the same holder), 0 when full.
redis.replicate_commands()
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
local held = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not held and redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], string.format('%d', now + ttl), ARGV[1])
-- The pool outlives its longest lease only, so abandoned pools disappear.
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return 1
