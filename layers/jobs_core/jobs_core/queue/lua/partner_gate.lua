-- partner_gate: flow control and endpoint health per partner, and the order of an escrow's
-- status webhooks. Not a script of its own: its functions are prepended to claim_jobs and
-- settle_jobs (scripts.py), so the gate costs no round trip. Jobs without a route entry
-- (every type but the gated ones) never reach it: an idle poll runs none of it.
-- Keys, built from the queue's prefix P (all under the queue's hash tag; see keys.py):
--   P route           hash  job id -> '<partner>\t<escrow>\t<version>\t<flag>' (gated jobs)
--   P partner:<p>     hash  disabled (reason), disabled_at, fails, opens, open_until, tat, wake
--   P inflight:<p>    zset  job ids leased for p, scored by lease deadline (concurrency)
--   P held:<p>        zset  '<type>|<id>' waiting for p (disabled, busy, rate, open circuit)
--   P chain:<escrow>  zset  pending status webhooks of an escrow, scored by escrow version
--   P timeline        '~disabled|<p>' scored DISABLED_SCORE: p's endpoint is disabled (a 410)
-- gate.init ARGV string: '<rate/s> <concurrency> <circuit failures> <open ms> <open cap ms>'.
-- A job waiting in held:<p> or on its chain is out of the timeline and spends no attempt.
local gate = {}

local function gate_on(jtype)
  return gate.gated ~= '' and string.find(gate.gated, '|' .. jtype .. '|', 1, true) ~= nil
end
gate.on = gate_on

local function gate_in_flight(st)
  if st.n == nil then
    st.n = redis.call('ZCOUNT', st.inflight, '(' .. gate.now, '+inf')
  end
  return st.n
end

function gate.init(prefix, now, gated, conf, claiming)
  gate.claiming = claiming
  gate.p, gate.now, gated = prefix, tonumber(now), gated or ''
  gate.gated = gated
  local r, c, f, o, cap = string.match(conf or '', '^(%S+) (%S+) (%S+) (%S+) (%S+)$')
  gate.rate, gate.conc = tonumber(r) or 10, tonumber(c) or 4
  gate.threshold, gate.open_ms, gate.cap_ms = tonumber(f) or 5, tonumber(o) or 30000,
    tonumber(cap) or 900000
  gate.partners = {}
end

local function gate_route(id)
  local raw = redis.call('HGET', gate.p .. 'route', id)
  if not raw then return nil end
  local p, e, v, w = string.match(raw, '^([^\t]*)\t([^\t]*)\t([^\t]*)\t?([^\t]*)$')
  return p, e, v, w
end

local function gate_partner(p)
  local st = gate.partners[p]
  if st then return st end
  local key = gate.p .. 'partner:' .. p
  local f = redis.call('HMGET', key, 'disabled', 'fails', 'open_until', 'tat', 'wake')
  local inflight = gate.p .. 'inflight:' .. p
  st = {
    name = p, key = key, inflight = inflight, held = gate.p .. 'held:' .. p,
    disabled = f[1], fails = tonumber(f[2]) or 0, open_until = tonumber(f[3]) or 0,
    tat = tonumber(f[4]) or 0, wake = tonumber(f[5]) or 0,
    rate = gate.rate, conc = gate.conc,
  }
  -- In flight: counted by the claim (expired leases hold no slot); a settle counts only
  -- when it needs to (gate_in_flight).
  if gate.claiming then
    redis.call('ZREMRANGEBYSCORE', inflight, '-inf', gate.now)
    st.n = redis.call('ZCARD', inflight)
  end
  st.nheld = redis.call('ZCARD', st.held) -- promotions skip the read while none waits
  gate.partners[p] = st
  return st
end

local function gate_park(tl, st, member)
  redis.call('ZREM', tl, member)
  st.nheld = st.nheld + redis.call('ZADD', st.held, gate.now, member)
  return false
end

-- Wait until `at`: one job of the partner waits in the timeline (the wake-up), the rest in held.
local function gate_wait(tl, st, member, at)
  if st.wake <= gate.now or at < st.wake then
    redis.call('ZADD', tl, at, member)
    st.wake = at
    redis.call('HSET', st.key, 'wake', at)
    return false
  end
  return gate_park(tl, st, member)
end

-- Move up to k held jobs back to the timeline, due just after now.
local function gate_promote(tl, st, k)
  if st.nheld == 0 or st.disabled or st.open_until > gate.now then return end
  local held = redis.call('ZRANGE', st.held, 0, k - 1)
  if #held == 0 then return end
  redis.call('ZREM', st.held, unpack(held))
  st.nheld = st.nheld - #held
  local zadd = {}
  for _, m in ipairs(held) do
    zadd[#zadd + 1] = gate.now + 1
    zadd[#zadd + 1] = m
  end
  redis.call('ZADD', tl, unpack(zadd))
end

-- claim: may this due job be leased now (until `deadline`)? If not, it was moved out of the
-- way (held, on its chain, or rescheduled) and spends no attempt.
function gate.admit(tl, member, jtype, id, deadline)
  if not gate_on(jtype) then return true end
  local p, e, v = gate_route(id)
  if not p then return true end
  if e ~= '' then
    local head = redis.call('ZRANGE', gate.p .. 'chain:' .. e, 0, 0)[1]
    if head and head ~= id then -- an earlier status of this escrow is pending: wait for it
      redis.call('ZREM', tl, member)
      redis.call('HSET', gate.p .. 'route', id, p .. '\t' .. e .. '\t' .. v .. '\tw')
      return false
    end
  end
  local st = gate_partner(p)
  local now = gate.now
  if st.disabled then return gate_park(tl, st, member) end
  if st.open_until > now then return gate_wait(tl, st, member, st.open_until) end
  local probe = st.fails >= gate.threshold -- the open period is over: one probe at a time
  if (probe and st.n > 0) or st.n >= st.conc then return gate_park(tl, st, member) end
  local interval = 1000 / st.rate
  local allowed_at = st.tat - 1000 + interval -- a burst of one second's worth, then the rate
  if allowed_at > now then return gate_wait(tl, st, member, math.ceil(allowed_at)) end
  st.tat = math.max(st.tat, now) + interval
  local fields = {'tat', st.tat}
  if probe then
    st.open_until = tonumber(deadline) -- until the probe settles, or its lease runs out
    fields[3], fields[4] = 'open_until', st.open_until
  end
  redis.call('HSET', st.key, unpack(fields))
  redis.call('ZADD', st.inflight, deadline, id)
  st.n = st.n + 1
  gate_promote(tl, st, 1)
  return true
end

-- A job left for good (done) or for the dead-letter queue: the next status of its escrow may go.
local function gate_finished(tl, jtype, id, p, e, v, dead)
  if dead then
    redis.call('HSET', gate.p .. 'route', id, p .. '\t\t' .. v .. '\t') -- a replay is unordered
  else
    redis.call('HDEL', gate.p .. 'route', id)
  end
  if e == '' then return end
  local chain = gate.p .. 'chain:' .. e
  redis.call('ZREM', chain, id)
  local next_id = redis.call('ZRANGE', chain, 0, 0)[1]
  if not next_id then return end
  local np, ne, nv, nw = gate_route(next_id)
  if nw == 'w' then -- it waits on the chain (not in the timeline): due now
    redis.call('HSET', gate.p .. 'route', next_id, np .. '\t' .. ne .. '\t' .. nv .. '\t')
    redis.call('ZADD', tl, gate.now + 1, jtype .. '|' .. next_id)
  end
end

-- settle: record what became of a gated job's delivery. Returns false for a 'hold' of a job
-- that has no partner (the caller dead-letters it instead).
function gate.settled(tl, jtype, id, action)
  if not gate_on(jtype) then return action ~= 'hold' end
  local p, e, v = gate_route(id)
  if not p then return action ~= 'hold' end
  local st = gate_partner(p)
  redis.call('ZREM', st.inflight, id)
  if st.n then st.n = math.max(st.n - 1, 0) end
  if action == 'done' or action == 'dead' then
    gate_finished(tl, jtype, id, p, e, v, action == 'dead')
  end
  if action == 'done' then
    if st.fails > 0 or st.open_until > 0 then
      redis.call('HSET', st.key, 'fails', 0, 'opens', 0, 'open_until', 0)
      st.fails, st.open_until = 0, 0
      gate_promote(tl, st, st.conc)
      return true
    end
  elseif action == 'retry' then
    st.fails = redis.call('HINCRBY', st.key, 'fails', 1)
    if st.fails >= gate.threshold then
      -- The period doubles when the circuit opens and when a probe fails, not for every
      -- delivery that was already in flight when it opened.
      local opens = tonumber(redis.call('HGET', st.key, 'opens')) or 0
      if st.fails == gate.threshold or gate_in_flight(st) == 0 then
        opens = redis.call('HINCRBY', st.key, 'opens', 1)
      end
      local period = math.min(gate.open_ms * 2 ^ math.min(opens - 1, 30), gate.cap_ms)
      st.open_until = gate.now + period
      st.wake = st.open_until
      redis.call('HSET', st.key, 'open_until', st.open_until, 'wake', st.wake)
      local first = st.nheld > 0 and redis.call('ZRANGE', st.held, 0, 0)[1]
      if first then -- the probe of the next half-open moment
        redis.call('ZREM', st.held, first)
        st.nheld = st.nheld - 1
        redis.call('ZADD', tl, st.open_until, first)
      end
      return true
    end
  elseif action == 'hold' then
    st.disabled = 'HTTP 410 Gone'
    redis.call('HSET', st.key, 'disabled', st.disabled, 'disabled_at', gate.now)
    redis.call('ZADD', tl, '-1e15', '~disabled|' .. p)
    st.nheld = st.nheld + redis.call('ZADD', st.held, gate.now, jtype .. '|' .. id)
    return true
  end
  gate_promote(tl, st, 1)
  return true
end

-- claim's reaper: a job whose lease expired was dead-lettered (out of attempts).
function gate.buried(tl, jtype, id)
  if not gate_on(jtype) then return end
  local p, e, v = gate_route(id)
  if not p then return end
  redis.call('ZREM', gate.p .. 'inflight:' .. p, id)
  gate_finished(tl, jtype, id, p, e, v, true)
end
