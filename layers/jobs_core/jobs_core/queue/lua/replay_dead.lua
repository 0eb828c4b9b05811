-- replay_dead: move dead-lettered jobs back to the queue with a fresh set of attempts;
-- the replay goes into each job's history and the audit.
-- KEYS[1] timeline   KEYS[2] dead   KEYS[3] audit
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] limit   ARGV[4] actor
-- ARGV[5] request token (the same in every copy of one request)
-- then the ids ('' = the oldest `limit`)
-- Returns the ids replayed (ids not in the dead-letter set are skipped).
-- Safe to resend: the replay event in a job's history carries the request token, and a
-- copy of the request that finds it there (the job ran and died again since the first
-- copy replayed it) leaves the job in the dead-letter queue: one request, one replay.
local prefix, now, actor, request = ARGV[1], tonumber(ARGV[2]), ARGV[4], ARGV[5]
local ids = {}
if #ARGV >= 6 then
  for i = 6, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('ZRANGE', KEYS[2], 0, tonumber(ARGV[3]) - 1)
end
local function replayed_by_this_request(hist)
  for _, event in ipairs(hist) do
    if event.kind == 'replayed' and event.request == request then return true end
  end
  return false
end
local out, resent = {}, false
for _, id in ipairs(ids) do
  local key = prefix .. 'job:' .. id
  local dead = redis.call('ZSCORE', KEYS[2], id)
  local raw = dead and redis.call('GET', key)
  if dead and not raw then redis.call('ZREM', KEYS[2], id) end -- a record deleted by hand
  if raw then
    local nl = string.find(raw, '\n', 1, true)
    local rec = cjson.decode(string.sub(raw, 1, nl - 1))
    local hist = type(rec.history) == 'table' and rec.history or {}
    if replayed_by_this_request(hist) then
      resent = true
    else
      redis.call('ZREM', KEYS[2], id)
      rec.state = 'queued'
      rec.attempts = 0
      rec.next_run_at = now
      rec.finished_at = cjson.null
      hist[#hist + 1] = {kind = 'replayed', at = now, actor = actor, next_run_at = now,
        request = request}
      while #hist > 10 do table.remove(hist, 1) end
      rec.history = hist
      redis.call('SET', key, cjson.encode(rec) .. string.sub(raw, nl))
      redis.call('ZADD', KEYS[1], now, rec.type .. '|' .. id)
      out[#out + 1] = id
    end
  end
end
if #out == 0 and resent then return out end -- a copy of a request already audited
local shown = {}
for i = 1, math.min(#out, 100) do shown[i] = out[i] end
redis.call('LPUSH', KEYS[3], cjson.encode({at = now, actor = actor, action = 'replay', count = #out, ids = shown}))
redis.call('LTRIM', KEYS[3], 0, 999)
return out
