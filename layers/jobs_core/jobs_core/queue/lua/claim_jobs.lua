-- claim_jobs: lease up to `limit` due jobs, oldest due first across all types, and make
-- the jobs of expired leases due again (an attempt counted; dead when attempts run out).
-- KEYS[1] timeline   KEYS[2] dead   KEYS[3] processor-active marker
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] lease deadline (ms)   ARGV[4] limit
-- ARGV[5] lease token  ARGV[6] type filter ('' for all, else '|t1|t2|')
-- ARGV[7] scan chunk   ARGV[8] scan cap   ARGV[9] resend (0|1)
-- ARGV[10] marker TTL (ms; 0 leaves the marker alone)   ARGV[11] lease length (ms)
-- Returns {reaped, dead_lettered, record_1, ..., record_k}: the claimed jobs' records.
-- Calls when idle: 1 ZRANGEBYSCORE. When it claims: + ZREM, ZADD, MGET, SET (resend guard).
-- Paused types: their '~pause|<type>' members score below every due time, so the first
-- range read returns them first; their jobs are skipped (the scan widens past them).
-- A reaped lease appends a 'lease_expired' event to the job's history (HISTORY_LIMIT 10).
local tl, dead, prefix = KEYS[1], KEYS[2], ARGV[1]
local now, deadline, limit = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local token, wanted = ARGV[5], ARGV[6]
local chunk, cap = tonumber(ARGV[7]), tonumber(ARGV[8])
local claim_key = prefix .. 'claim:' .. token

if ARGV[10] ~= '0' then
  redis.call('SET', KEYS[3], token, 'PX', ARGV[10])
end

-- A resent claim returns what the first one took instead of leasing more jobs.
if ARGV[9] == '1' then
  local prev = redis.call('GET', claim_key)
  if prev then
    local keys = {}
    for id in string.gmatch(prev, '%S+') do keys[#keys + 1] = prefix .. 'job:' .. id end
    local out = {0, 0}
    for _, rec in ipairs(redis.call('MGET', unpack(keys))) do
      if rec then out[#out + 1] = rec end
    end
    return out
  end
end

local reaped, buried = 0, 0
local function reap(member, jtype, id)
  redis.call('ZREM', tl, member)
  local key = prefix .. 'job:' .. id
  local raw = redis.call('GET', key)
  if not raw then return false end
  -- A record is '<header JSON>\n<payload JSON>': only the header is decoded and rewritten.
  local nl = string.find(raw, '\n', 1, true)
  local rec = cjson.decode(string.sub(raw, 1, nl - 1))
  rec.attempts = rec.attempts + 1
  rec.last_error = 'LeaseExpired: the processor holding the job stopped or ran out of time'
  local hist = type(rec.history) == 'table' and rec.history or {}
  local event = {kind = 'lease_expired', at = now, attempt = rec.attempts, error = rec.last_error}
  hist[#hist + 1] = event
  while #hist > 10 do table.remove(hist, 1) end
  rec.history = hist
  if rec.attempts >= rec.max_attempts then
    rec.state = 'dead'
    rec.finished_at = now
    redis.call('ZADD', dead, now, id)
    buried = buried + 1
  else
    rec.state = 'queued'
    rec.next_run_at = now
    event.next_run_at = now
    redis.call('ZADD', tl, now, jtype .. '|' .. id)
  end
  redis.call('SET', key, cjson.encode(rec) .. string.sub(raw, nl))
  reaped = reaped + 1
  return rec.state == 'queued'
end

local members, ids, types, paused = {}, {}, {}, {}
local offset = 0
while #ids < limit and offset < cap do
  local asked = chunk
  local due = redis.call('ZRANGEBYSCORE', tl, '-inf', now, 'LIMIT', offset, asked)
  for _, m in ipairs(due) do
    local bar = string.find(m, '|', 1, true)
    local jtype = string.sub(m, 1, bar - 1)
    local rest = string.sub(m, bar + 1)
    if jtype == '~pause' then
      paused[rest] = true
      chunk, cap = math.max(chunk, 500), math.max(cap, 10000)
    else
      local bar2 = string.find(rest, '|', 1, true)
      local id = rest
      if bar2 then
        id = string.sub(rest, 1, bar2 - 1)
        -- A reaped job that is due again can be claimed right here, like any other.
        if reap(m, jtype, id) then m = jtype .. '|' .. id else id = nil end
      end
      if id and #ids < limit and not paused[jtype]
          and (wanted == '' or string.find(wanted, '|' .. jtype .. '|', 1, true)) then
        members[#members + 1] = m
        ids[#ids + 1] = id
        types[#types + 1] = jtype
      end
    end
  end
  if #due < asked then break end
  offset = offset + asked
end

local out = {reaped, buried}
if #ids == 0 then return out end

redis.call('ZREM', tl, unpack(members))
local leases, keys = {}, {}
for i, id in ipairs(ids) do
  leases[#leases + 1] = deadline
  leases[#leases + 1] = types[i] .. '|' .. id .. '|' .. token
  keys[i] = prefix .. 'job:' .. id
end
redis.call('ZADD', tl, unpack(leases))
redis.call('SET', claim_key, table.concat(ids, ' '), 'PX', ARGV[11])
for _, rec in ipairs(redis.call('MGET', unpack(keys))) do
  -- A record can only be missing if someone deleted it by hand; its lease then expires harmlessly.
  if rec then out[#out + 1] = rec end
end
return out
