-- Applies one counter step at most once per idempotency record, atomically.
-- KEYS[1]: counter, KEYS[2]: record (a hash: fp, result).
-- ARGV[1]: 'add' | 'set', ARGV[2]: operand (decimal), ARGV[3]: fingerprint, ARGV[4]: TTL ms.
-- Returns {status, value}. Values stay strings end to end: Lua numbers are doubles and would
-- round integers above 2^53.
local rec = redis.call('HMGET', KEYS[2], 'fp', 'result')
if rec[1] then
  if rec[1] == ARGV[3] then return {'replayed', rec[2]} end
  return {'mismatch', ''}
end
if ARGV[1] == 'add' then
  -- INCRBY checks the 64-bit range itself; its overflow error becomes a clean outcome.
  local r = redis.pcall('INCRBY', KEYS[1], ARGV[2])
  if type(r) == 'table' and r.err then
    if string.find(r.err, 'overflow', 1, true) then return {'overflow', ''} end
    return r
  end
else
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
end
local value = redis.call('GET', KEYS[1])
redis.call('HSET', KEYS[2], 'fp', ARGV[3], 'result', value)
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return {'applied', value}
