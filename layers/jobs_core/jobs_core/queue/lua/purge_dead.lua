-- purge_dead: delete dead-lettered jobs and their records for good.
-- KEYS[1] dead
-- ARGV[1] key prefix   ARGV[2] limit   then the ids ('' = the oldest `limit`)
-- Returns the number of jobs purged.
local ids = {}
if #ARGV >= 3 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[1], 0, tonumber(ARGV[2]) - 1)
end
local purged = 0
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[1], id) == 1 then
    redis.call('DEL', ARGV[1] .. 'job:' .. id)
    purged = purged + 1
  end
end
return purged
