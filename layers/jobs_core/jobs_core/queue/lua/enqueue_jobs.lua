-- enqueue_jobs: store and queue one or more jobs, honouring dedupe keys.
-- KEYS[1] timeline
-- ARGV[1] key prefix  ARGV[2] dedupe window (s)
-- ARGV[3] now (ms) to read the processor-active marker at, or 0 not to read it
-- then 6 per job: id, type, due (ms), dedupe key ('' for none), record (JSON), route
--   ('' for none, else '<partner>\t<escrow>\t<version>\t': the partner gate's entry; with an
--   escrow, the job joins the escrow's chain so its status webhooks go in version order)
-- Returns {marker_present (0|1), id_1, ..., id_n}: id_i is the new job's id, or the id of
-- the job enqueued earlier under the same dedupe key (nothing is written for it).
-- Safe to resend: records are written NX, and a dedupe key that holds this very id is ours.
-- The marker is the timeline member '~active|' scored minus its expiry (keys.py): it is
-- read by the ZADD that queues the jobs, so reading it is free: the marker is live at
-- `now` while it scores below -(now + 0.5), and `ZADD LT CH -(now + 0.5)` leaves a live
-- one alone but writes (and counts as changed) an absent or expired one. (A second enqueue
-- in the same millisecond is told a processor is active: the first one's kick serves both.)
-- Calls: 1 SET per dedupe key, 1 MSETNX, 1 ZADD (+1 ZSCORE to read the marker when no job
-- is new), +1 HSET per routed job (+1 ZADD with an escrow).
local prefix, window, marker_at = ARGV[1], ARGV[2], tonumber(ARGV[3])
local MARKER = '~active|'
local out = {0}
local mset, zadd = {}, {}
local routes = {}
local n = (#ARGV - 3) / 6
for i = 0, n - 1 do
  local b = 4 + i * 6
  local id, jtype, due, dk, rec = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4]
  local winner = id
  if dk ~= '' then
    local dkey = prefix .. 'dedupe:' .. dk
    if not redis.call('SET', dkey, id, 'NX', 'EX', window) then
      winner = redis.call('GET', dkey) or id
    end
  end
  out[#out + 1] = winner
  if winner == id then
    mset[#mset + 1] = prefix .. 'job:' .. id
    mset[#mset + 1] = rec
    zadd[#zadd + 1] = due
    zadd[#zadd + 1] = jtype .. '|' .. id
    routes[#routes + 1] = ARGV[b + 5]
  end
end
-- The gate's entry of each new routed job.
local function route(j)
  local r = routes[(j + 1) / 2]
  if r == '' then return end
  local id = string.sub(mset[j], #prefix + 5)
  redis.call('HSET', prefix .. 'route', id, r)
  local _, e, v = string.match(r, '^([^\t]*)\t([^\t]*)\t([^\t]*)')
  if e ~= '' then redis.call('ZADD', prefix .. 'chain:' .. e, v, id) end
end
local boundary = -(marker_at + 0.5)
local function marker_live()
  local score = redis.call('ZSCORE', KEYS[1], MARKER)
  return score and tonumber(score) < boundary
end
local read = marker_at > 0
if #mset > 0 and redis.call('MSETNX', unpack(mset)) == 1 then
  local jobs = #zadd / 2
  if read then
    zadd[#zadd + 1] = boundary
    zadd[#zadd + 1] = MARKER
    out[1] = (redis.call('ZADD', KEYS[1], 'LT', 'CH', unpack(zadd)) == jobs) and 1 or 0
    read = false
  else
    redis.call('ZADD', KEYS[1], unpack(zadd))
  end
  for j = 1, #mset, 2 do route(j) end
elseif #mset > 0 then
  -- A resent request: some records exist already; write and queue only the missing ones.
  for j = 1, #mset, 2 do
    if redis.call('SET', mset[j], mset[j + 1], 'NX') then
      redis.call('ZADD', KEYS[1], zadd[j], zadd[j + 1])
      route(j)
    end
  end
end
if read then
  out[1] = marker_live() and 1 or 0
end
return out
