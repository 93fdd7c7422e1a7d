-- One counter step at most once per idempotency record, shared by idempotent_apply.lua and
-- rate_limit/limited_apply.lua. `counter` and `record` (a hash: fp, result) are keys; `kind` is 'add' or
-- 'set', `operand` a decimal string, `fp` the fingerprint, `ttl` the record's TTL in ms.
-- Returns {status, value}, or Redis's error table for an error other than an overflow.
-- Values stay strings end to end: Lua numbers are doubles and would round integers above
-- 2^53.
local function counter_apply(counter, record, kind, operand, fp, ttl)
  local rec = redis.call('HMGET', record, 'fp', 'result')
  if rec[1] then
    if rec[1] == fp then return {'replayed', rec[2]} end
    return {'mismatch', ''}
  end
  if kind == 'add' then
    -- INCRBY checks the 64-bit range itself; its overflow error becomes a clean outcome.
    local r = redis.pcall('INCRBY', counter, operand)
    if type(r) == 'table' and r.err then
      if string.find(r.err, 'overflow', 1, true) then return {'overflow', ''} end
      return r
    end
  else
    redis.call('SET', counter, operand, 'KEEPTTL')
  end
  local value = redis.call('GET', counter)
  redis.call('HSET', record, 'fp', fp, 'result', value)
  redis.call('PEXPIRE', record, ttl)
  return {'applied', value}
end
