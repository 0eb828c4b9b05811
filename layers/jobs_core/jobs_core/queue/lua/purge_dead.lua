-- purge_dead: delete dead-lettered jobs and their records for good; the audit keeps who.
-- KEYS[1] dead   KEYS[2] audit
-- ARGV[1] key prefix   ARGV[2] limit   ARGV[3] now (ms)   ARGV[4] actor
-- then the ids ('' = the oldest `limit`)
-- Returns the number of jobs purged. A purged webhook's partner-gate route entry goes too.
local ids = {}
if #ARGV >= 5 then
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
local purged = {}
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', ARGV[1] .. 'job:' .. id)
    redis.call('HDEL', ARGV[1] .. 'route', id)
    purged[#purged + 1] = id
  end
end
local shown = {}
for i = 1, math.min(#purged, 100) do shown[i] = purged[i] end
redis.call('LPUSH', KEYS[2], cjson.encode({at = tonumber(ARGV[3]), actor = ARGV[4], action = 'purge', count = #purged, ids = shown}))
redis.call('LTRIM', KEYS[2], 0, 999)
return #purged
