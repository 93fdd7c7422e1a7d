-- Sets KEYS[1] to ARGV[3] only when its value equals ARGV[2] (ARGV[1] = '1'), or when it is
-- absent (ARGV[1] = '0'). ARGV[4]: TTL in ms, '0' = none. Returns 1 when swapped.
local cur = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
  if cur ~= ARGV[2] then return 0 end
elseif cur then
  return 0
end
if ARGV[4] == '0' then
  redis.call('SET', KEYS[1], ARGV[3])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PX', ARGV[4])
end
return 1
