-- The rate limit, then (only when it admits) the idempotent apply: one script, so one round
-- trip and one atomic step. Runs after window.lua and idempotency/counter_apply.lua
-- (see redis.rs beside). KEYS[1]: the log, KEYS[2]: counter, KEYS[3]: record (on Redis Cluster the
-- store puts the log and the record in the counter's hash slot).
-- ARGV[1]: limit, ARGV[2]: window us, ARGV[3]: a member id unique to this call,
-- ARGV[4]: 'add' | 'set', ARGV[5]: operand (decimal), ARGV[6]: fingerprint, ARGV[7]: TTL ms.
-- Returns {allowed, entries, retry us, reset us, status, value}; status 'refused' when the
-- limiter refused (then nothing was written).
local rate = rate_window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
if rate[1] == 0 then
  rate[5], rate[6] = 'refused', ''
  return rate
end
local out = counter_apply(KEYS[2], KEYS[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if out.err then return out end
rate[5], rate[6] = out[1], out[2]
return rate
