-- list_dead: the newest dead-lettered jobs.
-- KEYS[1] dead
-- ARGV[1] key prefix   ARGV[2] offset   ARGV[3] limit
-- Returns {record_1, ...} newest first (records deleted by hand are skipped).
local ids = redis.call('ZREVRANGE', KEYS[1], ARGV[2], tonumber(ARGV[2]) + tonumber(ARGV[3]) - 1)
if #ids == 0 then return {} end
local keys = {}
for i, id in ipairs(ids) do keys[i] = ARGV[1] .. 'job:' .. id end
local out = {}
for _, rec in ipairs(redis.call('MGET', unpack(keys))) do
  if rec then out[#out + 1] = rec end
end
return out
