-- enqueue_jobs: store and queue one or more jobs, honouring dedupe keys.
-- KEYS[1] timeline   KEYS[2] processor-active marker
-- ARGV[1] key prefix  ARGV[2] dedupe window (s)  ARGV[3] read the marker (0|1)
-- then 5 per job: id, type, due (ms), dedupe key ('' for none), record (JSON)
-- Returns {marker_present (0|1), id_1, ..., id_n}: id_i is the new job's id, or the id of
-- the job enqueued earlier under the same dedupe key (nothing is written for it).
-- Safe to resend: records are written NX, and a dedupe key that holds this very id is ours.
-- Calls: 1 SET per dedupe key, 1 MSETNX, 1 ZADD (+1 EXISTS when the marker is read).
local prefix, window = ARGV[1], ARGV[2]
local out = {0}
local mset, zadd = {}, {}
local n = (#ARGV - 3) / 5
for i = 0, n - 1 do
  local b = 4 + i * 5
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
  end
end
if #mset > 0 then
  if redis.call('MSETNX', unpack(mset)) == 1 then
    redis.call('ZADD', KEYS[1], unpack(zadd))
  else
    -- A resent request: some records exist already; write and queue only the missing ones.
    for j = 1, #mset, 2 do
      if redis.call('SET', mset[j], mset[j + 1], 'NX') then
        redis.call('ZADD', KEYS[1], zadd[j], zadd[j + 1])
      end
    end
  end
end
if ARGV[3] == '1' then
  out[1] = redis.call('EXISTS', KEYS[2])
end
return out
