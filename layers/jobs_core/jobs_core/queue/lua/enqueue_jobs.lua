-- enqueue_jobs: store and queue one or more jobs, honouring dedupe keys.
-- KEYS[1] timeline   KEYS[2] processor-active marker
-- ARGV[1] key prefix  ARGV[2] dedupe window (s)  ARGV[3] read the marker (0|1)
-- then 6 per job: id, type, due (ms), dedupe key ('' for none), record (JSON), route
--   ('' for none, else '<partner>\t<escrow>\t<version>\t': the partner gate's entry; with an
--   escrow, the job joins the escrow's chain so its status webhooks go in version order)
-- Returns {marker_present (0|1), id_1, ..., id_n}: id_i is the new job's id, or the id of
-- the job enqueued earlier under the same dedupe key (nothing is written for it).
-- Safe to resend: records are written NX, and a dedupe key that holds this very id is ours.
-- Calls: 1 SET per dedupe key, 1 MSETNX, 1 ZADD (+1 EXISTS when the marker is read),
-- +1 HSET per routed job (+1 ZADD with an escrow).
local prefix, window = ARGV[1], ARGV[2]
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
if #mset > 0 then
  if redis.call('MSETNX', unpack(mset)) == 1 then
    redis.call('ZADD', KEYS[1], unpack(zadd))
    for j = 1, #mset, 2 do route(j) end
  else
    -- A resent request: some records exist already; write and queue only the missing ones.
    for j = 1, #mset, 2 do
      if redis.call('SET', mset[j], mset[j + 1], 'NX') then
        redis.call('ZADD', KEYS[1], zadd[j], zadd[j + 1])
        route(j)
      end
    end
  end
end
if ARGV[3] == '1' then
  out[1] = redis.call('EXISTS', KEYS[2])
end
return out
