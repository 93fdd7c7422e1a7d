-- Runs after counter_apply.lua (see redis.rs beside). KEYS[1]: counter, KEYS[2]: record.
-- ARGV[1]: 'add' | 'set', ARGV[2]: operand (decimal), ARGV[3]: fingerprint, ARGV[4]: TTL ms.
-- Returns {status, value}.
return counter_apply(KEYS[1], KEYS[2], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
