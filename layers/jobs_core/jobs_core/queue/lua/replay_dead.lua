-- replay_dead: move dead-lettered jobs back to the queue with a fresh set of attempts;
-- the replay goes into each job's history and the audit.
-- KEYS[1] timeline   KEYS[2] dead   KEYS[3] audit
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] limit   ARGV[4] actor
-- then the ids ('' = the oldest `limit`)
-- Returns the ids replayed (ids not in the dead-letter set are skipped).
local prefix, now, actor = ARGV[1], tonumber(ARGV[2]), ARGV[4]
local ids = {}
if #ARGV >= 5 then
  for i = 5, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1)
end
local out = {}
for _, id in ipairs(ids) do
  if redis.call('ZREM', KEYS[2], id) == 1 then
    local key = prefix .. 'job:' .. id
    local raw = redis.call('GET', key)
    if raw then
      local nl = string.find(raw, '\n', 1, true)
      local rec = cjson.decode(string.sub(raw, 1, nl - 1))
      rec.state = 'queued'
      rec.attempts = 0
      rec.next_run_at = now
      rec.finished_at = cjson.null
      local hist = type(rec.history) == 'table' and rec.history or {}
      hist[#hist + 1] = {kind = 'replayed', at = now, actor = actor, next_run_at = now}
      while #hist > 10 do table.remove(hist, 1) end
      rec.history = hist
      redis.call('SET', key, cjson.encode(rec) .. string.sub(raw, nl))
      redis.call('ZADD', KEYS[1], now, rec.type .. '|' .. id)
      out[#out + 1] = id
    end
  end
end
local shown = {}
for i = 1, math.min(#out, 100) do shown[i] = out[i] end
redis.call('LPUSH', KEYS[3], cjson.encode({at = now, actor = actor, action = 'replay', count = #out, ids = shown}))
redis.call('LTRIM', KEYS[3], 0, 999)
return out
