-- job_status: a job's record and, while it waits, the time it is due.
-- KEYS[1] timeline
-- ARGV[1] key prefix   ARGV[2] job id
-- Returns {record or nil, due (ms) or nil, where}. A waiting record with no due time is
-- leased (the record is not rewritten at claim time: that would cost a command per job),
-- unless the partner gate holds it: `where` is then 'held' (waiting for its partner) or
-- 'waiting' (for an earlier status of its escrow).
local raw = redis.call('GET', ARGV[1] .. 'job:' .. ARGV[2])
if not raw then return {false, false} end
local rec = cjson.decode(string.sub(raw, 1, string.find(raw, '\n', 1, true) - 1))
if rec.state == 'queued' or rec.state == 'scheduled' then
  local due = redis.call('ZSCORE', KEYS[1], rec.type .. '|' .. ARGV[2])
  if due then return {raw, due} end
  local route = redis.call('HGET', ARGV[1] .. 'route', ARGV[2])
  if route then
    local p = string.match(route, '^([^\t]*)\t')
    if string.sub(route, -2) == '\tw' then return {raw, false, 'waiting'} end
    if redis.call('ZSCORE', ARGV[1] .. 'held:' .. p, rec.type .. '|' .. ARGV[2]) then
      return {raw, false, 'held'}
    end
  end
  return {raw, false}
end
return {raw, false}
