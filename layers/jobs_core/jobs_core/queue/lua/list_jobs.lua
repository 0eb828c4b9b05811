-- list_jobs: one page of the jobs in one state, of one type or all, oldest or newest first.
-- KEYS[1] timeline   KEYS[2] dead
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] state: ready|scheduled|running|dead
-- ARGV[4] job type ('' for all)   ARGV[5] order: asc|desc   ARGV[6] offset   ARGV[7] limit
-- ARGV[8] scan cap (entries read at most)
-- Returns {matched, complete, record_1, score_1, record_2, score_2, ...}: `matched` counts
-- the jobs of the state and type among the entries read; complete is 1 when the whole
-- state was read (else `matched` is a lower bound). score: the due time (ready,
-- scheduled), the lease deadline (running), the time of death (dead).
-- Operator reads only: O(entries read), in chunks of 500 (one range read each).
local prefix, now, state, want_type = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4]
local desc, offset, limit, cap = ARGV[5] == 'desc', tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local key, lo, hi = KEYS[1], '(0', '+inf' -- '(0' leaves out the pause members (negative)
local sign = 1
if state == 'running' then
  -- Leases score minus their deadline: the earliest deadline is the highest score.
  lo, hi, desc, sign = '-inf', '(0', not desc, -1
elseif state == 'ready' then
  hi = tostring(now)
elseif state == 'scheduled' then
  lo = '(' .. now
elseif state == 'dead' then
  key, lo = KEYS[2], '-inf'
end
local type_mark = '"type":"' .. want_type .. '"'
local matched, complete, read = 0, 1, 0
local picked, scores = {}, {}
while true do
  if read >= cap then complete = 0 break end
  local n = math.min(500, cap - read)
  local got
  if desc then
    got = redis.call('ZREVRANGEBYSCORE', key, hi, lo, 'WITHSCORES', 'LIMIT', read, n)
  else
    got = redis.call('ZRANGEBYSCORE', key, lo, hi, 'WITHSCORES', 'LIMIT', read, n)
  end
  local dead_records
  if state == 'dead' and want_type ~= '' and #got > 0 then
    local keys = {}
    for i = 1, #got, 2 do keys[#keys + 1] = prefix .. 'job:' .. got[i] end
    dead_records = redis.call('MGET', unpack(keys))
  end
  for i = 1, #got, 2 do
    local m, id, ok = got[i], got[i], true
    if state == 'dead' then
      if dead_records then
        local rec = dead_records[(i + 1) / 2]
        local nl = rec and string.find(rec, '\n', 1, true)
        ok = nl and string.find(string.sub(rec, 1, nl), type_mark, 1, true) ~= nil
      end
    else
      local bar = string.find(m, '|', 1, true)
      local rest = string.sub(m, bar + 1)
      local bar2 = string.find(rest, '|', 1, true)
      id = bar2 and string.sub(rest, 1, bar2 - 1) or rest
      ok = (state == 'running') == (bar2 ~= nil)
        and (want_type == '' or string.sub(m, 1, bar - 1) == want_type)
        and string.byte(m, 1) ~= 33 -- not a resent claim's fence ('!fence|<token>|<expiry>')
    end
    if ok then
      matched = matched + 1
      if matched > offset and #picked < limit then
        picked[#picked + 1] = prefix .. 'job:' .. id
        scores[#scores + 1] = math.ceil(sign * tonumber(got[i + 1])) -- whole ms (keys.py)
      end
    end
  end
  read = read + #got / 2
  if #got / 2 < n then break end
end
local out = {matched, complete}
if #picked == 0 then return out end
for i, rec in ipairs(redis.call('MGET', unpack(picked))) do
  if rec then
    out[#out + 1] = rec
    out[#out + 1] = scores[i]
  end
end
return out
