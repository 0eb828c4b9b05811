-- find_jobs: the waiting, running and dead jobs whose record holds a text (the payload's
-- escrow id, as '"transaction_id":"<id>"').
-- KEYS[1] timeline   KEYS[2] dead
-- ARGV[1] key prefix   ARGV[2] the text   ARGV[3] scan cap (entries per set)   ARGV[4] limit
-- Returns {complete, record_1, where_1, score_1, ...}: where is 'waiting' (score: due
-- time), 'running' (score: lease deadline) or 'dead' (score: time of death); complete is
-- 0 when a set held more than the cap. Succeeded records are not indexed: not found here.
-- Operator reads only: O(entries), in chunks of 500 (a range read and an MGET each).
local prefix, text, cap, limit = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local out, complete = {}, 1
local found = 0
local function scan(key, is_dead)
  local read = 0
  while read < cap and found < limit do
    local got = redis.call('ZRANGE', key, read, read + math.min(500, cap - read) - 1, 'WITHSCORES')
    if #got == 0 then return end
    local keys, wheres, scores = {}, {}, {}
    for i = 1, #got, 2 do
      local m, id, where = got[i], got[i], 'dead'
      if not is_dead then
        local bar = string.find(m, '|', 1, true)
        local rest = string.sub(m, bar + 1)
        local bar2 = string.find(rest, '|', 1, true)
        id = bar2 and string.sub(rest, 1, bar2 - 1) or rest
        where = bar2 and 'running' or 'waiting'
        -- a pause, a disabled partner, the marker, a resent claim's fence
        if string.find('~!', string.sub(m, 1, 1), 1, true) then id = nil end
      end
      if id then
        keys[#keys + 1] = prefix .. 'job:' .. id
        wheres[#wheres + 1] = where
        -- A lease scores minus its deadline.
        scores[#scores + 1] = math.ceil(where == 'running' and -tonumber(got[i + 1]) or tonumber(got[i + 1]))
      end
    end
    if #keys > 0 then
      for i, rec in ipairs(redis.call('MGET', unpack(keys))) do
        if rec and found < limit and string.find(rec, text, 1, true) then
          found = found + 1
          out[#out + 1] = rec
          out[#out + 1] = wheres[i]
          out[#out + 1] = scores[i]
        end
      end
    end
    read = read + #got / 2
  end
  if read >= cap and redis.call('ZCARD', key) > cap then complete = 0 end
end
scan(KEYS[1], false)
scan(KEYS[2], true)
table.insert(out, 1, complete)
return out
