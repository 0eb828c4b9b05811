-- act_on_waiting_job: an operator's action on a waiting (ready or scheduled) job, with the
-- action in the job's history and in the audit.
--   'cancel'  : out of the queue; the record says 'cancelled' and expires after the retention
--   'run-now' : due at once (a scheduled job, or one backing off before a retry)
-- KEYS[1] timeline   KEYS[2] audit
-- ARGV[1] key prefix   ARGV[2] job id   ARGV[3] now (ms)   ARGV[4] retention (s)
-- ARGV[5] actor   ARGV[6] action: cancel|run-now
-- Returns {code, state}: 1 done; 0 no such job; 2 not waiting (state: what it is).
local prefix, id, now, actor, action = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[5], ARGV[6]
local key = prefix .. 'job:' .. id
local raw = redis.call('GET', key)
if not raw then return {0, ''} end
local nl = string.find(raw, '\n', 1, true)
local rec = cjson.decode(string.sub(raw, 1, nl - 1))
local waiting = rec.state == 'queued' or rec.state == 'scheduled'
local member = rec.type .. '|' .. id
if not waiting or not redis.call('ZSCORE', KEYS[1], member) then
  return {2, waiting and 'running' or rec.state} -- a leased job's record still says queued
end
local event = {kind = 'cancelled', at = now, actor = actor}
if action == 'cancel' then
  redis.call('ZREM', KEYS[1], member)
  rec.state = 'cancelled'
  rec.finished_at = now
else
  redis.call('ZADD', KEYS[1], 'XX', now, member)
  rec.state = 'queued'
  rec.next_run_at = now
  event = {kind = 'run_now', at = now, actor = actor, next_run_at = now}
end
local hist = type(rec.history) == 'table' and rec.history or {}
hist[#hist + 1] = event
while #hist > 10 do table.remove(hist, 1) end
rec.history = hist
if action == 'cancel' then
  redis.call('SET', key, cjson.encode(rec) .. string.sub(raw, nl), 'EX', ARGV[4])
else
  redis.call('SET', key, cjson.encode(rec) .. string.sub(raw, nl))
end
redis.call('LPUSH', KEYS[2], cjson.encode({at = now, actor = actor, action = action, count = 1, ids = {id}}))
redis.call('LTRIM', KEYS[2], 0, 999)
return {1, rec.state}
