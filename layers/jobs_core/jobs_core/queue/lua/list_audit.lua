-- list_audit: the newest operator actions.
-- KEYS[1] audit
-- ARGV[1] offset   ARGV[2] limit
-- Returns {entry_1, ...}: JSON {at, actor, action, count, ids?, type?}, newest first.
return redis.call('LRANGE', KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[1]) + tonumber(ARGV[2]) - 1)
