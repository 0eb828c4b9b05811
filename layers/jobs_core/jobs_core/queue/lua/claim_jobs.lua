-- claim_jobs: make the jobs of expired leases due again (an attempt counted; dead when
-- attempts run out), then lease up to `limit` jobs: reaped ones first, then the oldest due.
-- KEYS[1] timeline   KEYS[2] dead
-- ARGV[1] key prefix   ARGV[2] now (ms)   ARGV[3] lease deadline (ms)   ARGV[4] limit
-- ARGV[5] lease token  ARGV[6] type filter ('' for all, else '|t1|t2|')
-- ARGV[7] scan chunk   ARGV[8] scan cap   ARGV[9] resend (0|1)
-- ARGV[10] marker TTL (ms; 0 leaves the processor-active marker alone)   ARGV[11] lease length (ms)
-- ARGV[12] gated types ('|t1|' or '')   ARGV[13] gate settings (see partner_gate.lua)
-- ARGV[14] hints: '' or '<member> <score> ...', jobs whose records the caller holds (the
--   kick that started a drain carries what its enqueue wrote). A hinted job found as it
--   was enqueued (that member at that score: only an enqueue writes a score ending in .75,
--   keys.py) is leased without reading its record; the reply has '=<i>' (hint i) for it.
-- Returns {reaped, dead_lettered, next, oom, record_1, ..., record_k}: the claimed jobs'
--   records (or hint references); `next` is when the next unclaimed job is due (ms; <= now:
--   more is due now), or -1 when the timeline holds nothing else but live leases; `oom` is
--   1 when Redis refused a write for memory (the claim still ran: its first write frees
--   memory).
-- Leases are scored -deadline, so one range [-now, +inf] yields expired leases first (all
-- of them before any due job, whatever the backlog), then due jobs, then the next one due.
-- Fencing, whichever copy of a claim runs first (a resend can overtake a late original):
--   a resend returns the jobs leased under its token (found at score -deadline), and
--   otherwise writes the token's claim key (the ids it took, '' for none) and the fence
--   member '!fence|<token>|<expiry ms>' at score -now, where the original's scan begins
--   ('!' sorts before every other member of that score), so a late original meets it
--   before anything it could lease, reads the claim key and returns the resend's jobs (or
--   none) instead of leasing more. Expired fences go in a later claim's ZREM.
-- Calls when idle: 1 ZRANGEBYSCORE. When it claims: + MGET (none if every job is hinted),
-- ZREM, ZADD; reaping (any number of leases) adds MSET and at most 2 ZADD, and shares the
-- MGET. A resend: + GET, ZRANGEBYSCORE, SET, ZADD (its fence; + DEL under full memory).
-- Paused types: their '~pause|<type>' members score minus the time of the pause, inside the
-- range and below every due time, so the scan sees them before any due job; their jobs are
-- skipped (the scan widens past them), and their reaped jobs are due again, not leased.
-- A reaped lease appends a 'lease_expired' event to the job's history (HISTORY_LIMIT 10).
-- Gated jobs (partner webhooks) are leased only when their partner's gate admits them
-- (partner_gate.lua, prepended): the gate's calls run for those jobs only, never when idle.
local tl, dead, prefix = KEYS[1], KEYS[2], ARGV[1]
local now, deadline, limit = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local token, wanted, resend = ARGV[5], ARGV[6], ARGV[9] == '1'
local chunk, cap = tonumber(ARGV[7]), tonumber(ARGV[8])
local claim_key = prefix .. 'claim:' .. token
local lease_score = '-' .. deadline
local oom = 0
gate.init(prefix, now, ARGV[12], ARGV[13], true)

-- hinted[member] = {i, score}: the i-th hint
local hinted = {}
do
  local i, member = 0, nil
  for word in string.gmatch(ARGV[14] or '', '%S+') do
    if member then
      i = i + 1
      hinted[member] = {i, tonumber(word)}
      member = nil
    else
      member = word
    end
  end
end

local function is_oom(reply)
  return type(reply) == 'table' and reply.err ~= nil
    and (string.find(reply.err, 'OOM', 1, true) or string.find(reply.err, 'maxmemory', 1, true))
end

local function job_keys(ids)
  local keys = {}
  for i, id in ipairs(ids) do keys[i] = prefix .. 'job:' .. id end
  return keys
end

local function claimed_before(ids)
  local out = {0, 0, -1, oom}
  if #ids == 0 then return out end
  for _, rec in ipairs(redis.call('MGET', unpack(job_keys(ids)))) do
    if rec then out[#out + 1] = rec end
  end
  return out
end

local function split(text)
  local ids = {}
  for id in string.gmatch(text, '%S+') do ids[#ids + 1] = id end
  return ids
end

local function wants(jtype)
  return wanted == '' or string.find(wanted, '|' .. jtype .. '|', 1, true) ~= nil
end

-- The marker first: under full memory Redis refuses it (the script's first write), which
-- is how a claim sees a full Redis; the claim goes on (its ZREM frees memory first).
-- The marker is the timeline member '~active|' scored minus its expiry (see keys.py).
if ARGV[10] ~= '0' and is_oom(redis.pcall('ZADD', tl, -(now + tonumber(ARGV[10])), '~active|')) then
  oom = 1
end

-- A resend's fence: the claim key (the ids it took) and the timeline member that a late
-- original meets first in its scan. Under full memory Redis refuses a script's writes
-- until it has made one (an empty resend has made none): a DEL of the absent claim key is
-- a write that needs no memory, after which the fence goes in (+1 call, only then).
local function write_fence(ids_text)
  local member = '!fence|' .. token .. '|' .. (now + tonumber(ARGV[11]))
  local set = redis.pcall('SET', claim_key, ids_text, 'PX', ARGV[11])
  if is_oom(set) then
    oom = 1
    redis.call('DEL', claim_key)
    redis.pcall('SET', claim_key, ids_text, 'PX', ARGV[11])
  end
  -- pcall: a fence refused for another reason must not fail a claim that took jobs
  redis.pcall('ZADD', tl, '-' .. ARGV[2], member)
end

if resend then
  local prev = redis.call('GET', claim_key)
  if prev then return claimed_before(split(prev)) end
  -- The first copy ran and leased: its leases carry this token at this very score.
  local suffix, mine = '|' .. token, {}
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', tl, lease_score, lease_score)) do
    if string.sub(m, -#suffix) == suffix then
      local bar = string.find(m, '|', 1, true)
      mine[#mine + 1] = string.sub(m, bar + 1, #m - #suffix)
    end
  end
  if #mine > 0 then
    write_fence(table.concat(mine, ' '))
    return claimed_before(mine)
  end
end

-- Scan: expired leases (scores -deadline >= -now), then due jobs, `limit` in all.
local lease_m, lease_ids, lease_types = {}, {}, {}
local take_m, take_ids, take_types, take_hint, paused = {}, {}, {}, {}, {}
local stale = {} -- expired fence members
local taking = 0 -- leases of wanted types, and due jobs: what this claim will lease
local next_due = -1
local offset = 0
while offset < cap do
  local asked = chunk -- a pause member widens `chunk` for the next read
  local got = redis.call('ZRANGEBYSCORE', tl, '-' .. ARGV[2], '+inf', 'WITHSCORES', 'LIMIT', offset, asked)
  local stop = false
  for i = 1, #got, 2 do
    local m, score = got[i], tonumber(got[i + 1])
    if score > now then
      next_due, stop = math.ceil(score), true -- whole ms (an enqueue's score: keys.py)
      break
    end
    if string.byte(m, 1) == 33 then -- '!': a resent claim's fence
      local t, expiry = string.match(m, '^!fence|([^|]*)|(%d+)$')
      if t == token and not resend then
        local prev = redis.call('GET', claim_key)
        return claimed_before(prev and split(prev) or {})
      end
      if not expiry or tonumber(expiry) <= now then stale[#stale + 1] = m end
    elseif taking >= limit then
      next_due, stop = now, true -- more is due than this claim takes
      break
    else
      local bar = string.find(m, '|', 1, true)
      local jtype = string.sub(m, 1, bar - 1)
      local rest = string.sub(m, bar + 1)
      local bar2 = string.find(rest, '|', 1, true)
      if jtype == '~pause' then
        paused[rest] = true
        chunk, cap = math.max(chunk, 500), math.max(cap, 10000)
      elseif jtype == '~active' then
        -- an expired processor-active marker (a live one scores below -now): not a job
      elseif bar2 then
        if wants(jtype) then taking = taking + 1 end
        lease_m[#lease_m + 1] = m
        lease_ids[#lease_ids + 1] = string.sub(rest, 1, bar2 - 1)
        lease_types[#lease_types + 1] = jtype
      elseif wants(jtype) and not paused[jtype] then
        taking = taking + 1
        if gate.admit(tl, m, jtype, rest, deadline) then
          local hint = hinted[m]
          take_m[#take_m + 1] = m
          take_ids[#take_ids + 1] = rest
          take_types[#take_types + 1] = jtype
          take_hint[#take_m] = hint ~= nil and hint[2] == score and hint[1]
        end
      end
    end
  end
  if stop or #got < 2 * asked then break end
  offset = offset + asked
  if offset >= cap then next_due = now end -- the cap cut the scan: there may be more
end

local function fence(ids)
  -- Only a resend writes the fence (a late original must find it).
  if resend then write_fence(table.concat(ids, ' ')) end
end

if #lease_m == 0 and #take_m == 0 then
  if #stale > 0 then redis.call('ZREM', tl, unpack(stale)) end
  fence({})
  return {0, 0, next_due, oom}
end

-- One MGET: the records of the due jobs not hinted and those of the expired leases (none
-- if every job is hinted). The scan met no fence: no resend of this claim ran first.
local keys, slot = {}, {}
for i, id in ipairs(take_ids) do
  if not take_hint[i] then
    keys[#keys + 1] = prefix .. 'job:' .. id
    slot[i] = #keys
  end
end
local lease_at = #keys
for _, id in ipairs(lease_ids) do keys[#keys + 1] = prefix .. 'job:' .. id end
local recs = #keys > 0 and redis.call('MGET', unpack(keys)) or {}

-- Reap: one ZREM, one MSET and two ZADD whatever the number of leases.
-- The ZREM is the first write: it frees memory, so a full Redis allows the writes after it.
local gone = {}
for _, m in ipairs(lease_m) do gone[#gone + 1] = m end
for _, m in ipairs(take_m) do gone[#gone + 1] = m end
for _, m in ipairs(stale) do gone[#gone + 1] = m end
redis.call('ZREM', tl, unpack(gone))
local reaped, buried = 0, 0
local ids, types, out_recs, zadd, bury = {}, {}, {}, {}, {}
if #lease_m > 0 then
  local sets = {}
  for i, id in ipairs(lease_ids) do
    local raw = recs[lease_at + i]
    if raw then
      -- A record is '<header JSON>\n<payload JSON>': only the header is decoded and rewritten.
      local nl = string.find(raw, '\n', 1, true)
      local rec = cjson.decode(string.sub(raw, 1, nl - 1))
      local jtype = lease_types[i]
      rec.attempts = rec.attempts + 1
      rec.last_error = 'LeaseExpired: the processor holding the job stopped or ran out of time'
      local hist = type(rec.history) == 'table' and rec.history or {}
      local event = {kind = 'lease_expired', at = now, attempt = rec.attempts, error = rec.last_error}
      hist[#hist + 1] = event
      while #hist > 10 do table.remove(hist, 1) end
      rec.history = hist
      local leasable = wants(jtype) and not paused[jtype]
      if rec.attempts >= rec.max_attempts then
        rec.state = 'dead'
        rec.finished_at = now
        bury[#bury + 1] = now
        bury[#bury + 1] = id
        buried = buried + 1
        gate.buried(tl, jtype, id)
      else
        rec.state = 'queued'
        rec.next_run_at = now
        event.next_run_at = now
        if not leasable then
          -- Another type's job: due again, ahead of the backlog queued after it.
          zadd[#zadd + 1] = math.min(tonumber(rec.created_at) or now, now)
          zadd[#zadd + 1] = jtype .. '|' .. id
        end
      end
      local new = cjson.encode(rec) .. string.sub(raw, nl)
      sets[#sets + 1] = keys[lease_at + i]
      sets[#sets + 1] = new
      -- A gated job the gate does not admit now was moved out of the way by the gate.
      if rec.state == 'queued' and leasable and gate.admit(tl, jtype .. '|' .. id, jtype, id, deadline) then
        ids[#ids + 1], types[#types + 1], out_recs[#out_recs + 1] = id, jtype, new
      end
      reaped = reaped + 1
    end
  end
  if #sets > 0 then redis.call('MSET', unpack(sets)) end
  if #bury > 0 then redis.call('ZADD', dead, unpack(bury)) end
end

-- Lease the reaped jobs first, then the due ones.
for i, id in ipairs(take_ids) do
  -- A record can only be missing if someone deleted it by hand: its entry is dropped.
  local rec = take_hint[i] and ('=' .. take_hint[i]) or recs[slot[i]]
  if rec then
    ids[#ids + 1], types[#types + 1], out_recs[#out_recs + 1] = id, take_types[i], rec
  end
end
for i, id in ipairs(ids) do
  zadd[#zadd + 1] = lease_score
  zadd[#zadd + 1] = types[i] .. '|' .. id .. '|' .. token
end
if #zadd > 0 then redis.call('ZADD', tl, unpack(zadd)) end
fence(ids)

local out = {reaped, buried, next_due, oom}
for _, rec in ipairs(out_recs) do out[#out + 1] = rec end
return out
