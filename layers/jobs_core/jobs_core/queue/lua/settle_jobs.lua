-- settle_jobs: record the outcome of leased jobs, each fenced by its lease token.
-- KEYS[1] timeline   KEYS[2] dead
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] retention of finished records (s)
-- ARGV[4] gated types ('|t1|' or '')   ARGV[5] gate settings (see partner_gate.lua)
-- then 6 per job: id, type, token, action, record (JSON; '' for release), score (ms)
--   action 'done'    : the record is kept `retention` seconds
--   action 'retry'   : the record is kept and the job is due again at `score`
--   action 'dead'    : the record is kept and the id joins the dead-letter set
--   action 'release' : the job is due again at `score`, record untouched, no attempt counted
--   action 'hold'    : the record is kept and the job waits in its partner's held set, the
--                      partner disabled (a 410); dead-lettered if the job has no partner
-- A gated job's outcome also goes to its partner's gate (partner_gate.lua, prepended).
-- Returns one code per job: 1 settled, 0 lease lost (taken over or settled by another
-- holder: nothing written), 2 settled already by this token (a resent request).
-- Calls: 1 ZREM (one job) or ZMSCORE + ZREM (several), 1 SET per job, at most 2 ZADD.
local tl, dead, prefix = KEYS[1], KEYS[2], ARGV[1]
local now, retention = ARGV[2], ARGV[3]
local n = (#ARGV - 5) / 6
gate.init(prefix, now, ARGV[4], ARGV[5])
local members, held = {}, {}
for i = 1, n do
  local b = 6 + (i - 1) * 6
  members[i] = ARGV[b + 1] .. '|' .. ARGV[b] .. '|' .. ARGV[b + 2]
end
if n == 1 then
  held[1] = redis.call('ZREM', tl, members[1]) == 1
else
  local scores = redis.call('ZMSCORE', tl, unpack(members))
  local present = {}
  for i = 1, n do
    held[i] = scores[i] ~= false and scores[i] ~= nil
    if held[i] then present[#present + 1] = members[i] end
  end
  if #present > 0 then redis.call('ZREM', tl, unpack(present)) end
end

local codes, requeue, bury = {}, {}, {}
for i = 1, n do
  local b = 6 + (i - 1) * 6
  local id, jtype, token, action, rec, score =
    ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5]
  local key = prefix .. 'job:' .. id
  if held[i] then
    if action == 'done' then
      redis.call('SET', key, rec, 'EX', retention)
    elseif action == 'retry' then
      redis.call('SET', key, rec)
      requeue[#requeue + 1] = score
      requeue[#requeue + 1] = jtype .. '|' .. id
    elseif action == 'dead' then
      redis.call('SET', key, rec)
      bury[#bury + 1] = now
      bury[#bury + 1] = id
    elseif action == 'hold' then
      redis.call('SET', key, rec)
    else
      requeue[#requeue + 1] = score
      requeue[#requeue + 1] = jtype .. '|' .. id
    end
    local kept = action ~= 'hold'
    if gate.on(jtype) then kept = gate.settled(tl, jtype, id, action) end
    if not kept then
      bury[#bury + 1] = now
      bury[#bury + 1] = id
    end
    codes[i] = 1
  elseif action == 'release' then
    codes[i] = redis.call('ZSCORE', tl, jtype .. '|' .. id) and 2 or 0
  else
    -- Only the settle of this token writes settled_by = token: if the record says so, the
    -- first copy of this request was applied and this one is a resend.
    local raw = redis.call('GET', key)
    local settled_by = raw and cjson.decode(string.sub(raw, 1, string.find(raw, '\n', 1, true) - 1)).settled_by
    codes[i] = (settled_by == token) and 2 or 0
  end
end
if #requeue > 0 then redis.call('ZADD', tl, unpack(requeue)) end
if #bury > 0 then redis.call('ZADD', dead, unpack(bury)) end
return codes
