-- count_dead: dead-lettered jobs per job type (the dead set holds ids: the records say).
-- KEYS[1] dead
-- ARGV[1] key prefix   ARGV[2] scan cap (ids read at most)
-- Returns {complete, type_1, count_1, type_2, count_2, ...}; complete is 0 past the cap.
-- Operator reads only (the console's overview): a range read and an MGET per 500 ids.
local prefix, cap = ARGV[1], tonumber(ARGV[2])
local counts, order, read = {}, {}, 0
while read < cap do
  local ids = redis.call('ZRANGE', KEYS[1], read, read + math.min(500, cap - read) - 1)
  if #ids == 0 then break end
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = prefix .. 'job:' .. id end
  for _, rec in ipairs(redis.call('MGET', unpack(keys))) do
    if rec then
      local jtype = string.match(rec, '^{"id":"[^"]*","type":"([^"]+)"')
      if jtype then
        if not counts[jtype] then
          counts[jtype] = 0
          order[#order + 1] = jtype
        end
        counts[jtype] = counts[jtype] + 1
      end
    end
  end
  read = read + #ids
end
local out = {(read >= cap and redis.call('ZCARD', KEYS[1]) > cap) and 0 or 1}
for _, jtype in ipairs(order) do
  out[#out + 1] = jtype
  out[#out + 1] = counts[jtype]
end
return out
