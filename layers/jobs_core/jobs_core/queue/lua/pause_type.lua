-- pause_type: pause or resume a job type. A paused type's member in the timeline scores
-- below every due time (minus the time it was paused), so the claim's one range read sees
-- it first and skips the type's jobs: pausing costs the idle poll nothing.
-- KEYS[1] timeline   KEYS[2] audit
-- ARGV[1] pause member ('~pause|<type>')   ARGV[2] now (ms)   ARGV[3] actor
-- ARGV[4] 'pause' or 'resume'   ARGV[5] the job type (for the audit)
-- ARGV[6] request token (the same in every copy of one request)
-- Returns 1 when it changed something, 0 when the type was paused (resumed) already.
-- Safe to resend: the audit entry carries the request token; a copy of a request that is
-- in the audit already (a late original after its resend, or after a later resume) does
-- nothing and answers what the first copy did: it cannot undo a later operator's action.
local now, actor, request = tonumber(ARGV[2]), ARGV[3], ARGV[6]
local applied = audited_entry(KEYS[2], request) -- audited_request.lua, prepended
if applied then return applied.count end
local changed
if ARGV[4] == 'pause' then
  changed = redis.call('ZADD', KEYS[1], 'NX', -now, ARGV[1])
else
  changed = redis.call('ZREM', KEYS[1], ARGV[1])
end
redis.call('LPUSH', KEYS[2], cjson.encode({at = now, actor = actor, action = ARGV[4], count = changed, type = ARGV[5],
  request = request}))
redis.call('LTRIM', KEYS[2], 0, 999)
return changed
