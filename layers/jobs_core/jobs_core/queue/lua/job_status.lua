-- job_status: a job's record and, while it waits, the time it is due.
-- KEYS[1] timeline
-- ARGV[1] key prefix   ARGV[2] job id
-- Returns {record or nil, due (ms) or nil}. A waiting record with no due time is leased:
-- the record is not rewritten at claim time (that would cost a command per job).
local raw = redis.call('GET', ARGV[1] .. 'job:' .. ARGV[2])
if not raw then return {false, false} end
local rec = cjson.decode(string.sub(raw, 1, string.find(raw, '\n', 1, true) - 1))
if rec.state == 'queued' or rec.state == 'scheduled' then
  local due = redis.call('ZSCORE', KEYS[1], rec.type .. '|' .. ARGV[2])
  return {raw, due or false}
end
return {raw, false}
