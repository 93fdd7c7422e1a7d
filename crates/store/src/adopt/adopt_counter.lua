-- Adopts a counter another program kept under another key, once.
-- KEYS[1]: its key, KEYS[2]: ours, KEYS[3]: marker (records the adopted text).
-- ARGV[1]: the text KEYS[1] was read as, ARGV[2]: that value as our canonical integer.
-- The source key is left as it was (a rollback can still read it).
if redis.call('EXISTS', KEYS[3]) == 1 then return 'done' end
local cur = redis.call('GET', KEYS[1])
if not cur then return 'absent' end
if cur ~= ARGV[1] then return 'changed' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'exists' end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[1])
return 'moved'
