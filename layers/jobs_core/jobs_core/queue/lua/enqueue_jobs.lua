-- enqueue_jobs: store and queue one or more jobs, honouring dedupe keys.
-- KEYS[1] timeline
-- ARGV[1] key prefix
-- ARGV[2] now (ms) to read the processor-active marker at, or 0 not to read it
-- ARGV[3] number of jobs n
-- then 5 per job: id, type, score (keys.enqueued_score: due ms less a quarter), record
--   (JSON), route ('' for none, else
--   '<partner>\t<escrow>\t<version>\t': the partner gate's entry; with an escrow, the job
--   joins the escrow's chain so its status webhooks go in version order)
-- then, with Settings.legacy_dedupe_keys only, n legacy dedupe keys ('' for none: below)
-- Returns {marker_present (0|1), existed_1, ..., existed_n}: existed_i is 1 when job i's
-- record was there already, written by another request (nothing is written for it); or
-- the id an earlier version's dedupe key holds (nothing is written either).
-- Dedupe: a job enqueued with a dedupe key has an id derived from that key (ids.py),
-- so its record is the dedupe key: it holds as long as the record lives (waiting,
-- running, dead, and the retention after it finished), and costs no command of its own.
-- Safe to resend: records are written NX; a record that holds these very bytes is ours.
-- Upgrading a running queue: earlier versions kept 'dedupe:<key>' -> id (random ids) for
-- the dedupe window; with a legacy key given, one GET honours it (+1 call a job).
-- The marker is the timeline member '~active|' scored minus its expiry (keys.py): it is
-- read by the ZADD that queues the jobs, so reading it is free: the marker is live at
-- `now` while it scores below -(now + 0.5), and `ZADD LT CH -(now + 0.5)` leaves a live
-- one alone but writes (and counts as changed) an absent or expired one. (A second enqueue
-- in the same millisecond is told a processor is active: the first one's kick serves both.)
-- Calls: 1 MSETNX, 1 ZADD, +1 HSET per routed job (+1 ZADD with an escrow). When a record
-- exists (a dedupe hit, a resend): 1 SET NX per job (+1 GET if it existed), 1 ZADD per new
-- job, +1 ZSCORE to read the marker.
local prefix, marker_at = ARGV[1], tonumber(ARGV[2])
local MARKER = '~active|'
local out = {0}
local mset, zadd = {}, {}
local routes, pos, seen = {}, {}, {}
local n = tonumber(ARGV[3])
local with_legacy = #ARGV > 3 + n * 5
for i = 0, n - 1 do
  local b = 4 + i * 5
  local id = ARGV[b]
  local old = with_legacy and ARGV[4 + n * 5 + i] or ''
  local legacy = old ~= '' and redis.call('GET', prefix .. 'dedupe:' .. old)
  if legacy and legacy ~= id then
    out[#out + 1] = legacy
  elseif seen[id] then
    out[#out + 1] = 1 -- the same dedupe key twice in one request: the first one counts
  else
    seen[id] = true
    out[#out + 1] = 0
    mset[#mset + 1] = prefix .. 'job:' .. id
    mset[#mset + 1] = ARGV[b + 3]
    zadd[#zadd + 1] = ARGV[b + 2]
    zadd[#zadd + 1] = ARGV[b + 1] .. '|' .. id
    routes[#routes + 1] = ARGV[b + 4]
    pos[#pos + 1] = #out
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
  -- Some records exist (a dedupe hit, or this request resent): write and queue the others.
  for j = 1, #mset, 2 do
    if redis.call('SET', mset[j], mset[j + 1], 'NX') then
      redis.call('ZADD', KEYS[1], zadd[j], zadd[j + 1])
      route(j)
    elseif redis.call('GET', mset[j]) ~= mset[j + 1] then
      out[pos[(j + 1) / 2]] = 1
    end
  end
end
if read then
  out[1] = marker_live() and 1 or 0
end
return out
