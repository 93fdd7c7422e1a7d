-- Runs after window.lua (see redis.rs beside). KEYS[1]: the log. ARGV[1]: limit,
-- ARGV[2]: window us, ARGV[3]: a member id unique to this call.
-- Returns {allowed (0/1), entries after the decision, retry us, reset us}.
return rate_window(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3])
