-- extend_leases: move the deadline of held leases later (never earlier: a late copy of an
-- older extend cannot shorten a lease; leases are scored -deadline, hence LT).
-- KEYS[1] timeline
-- ARGV[1] new deadline (ms)   ARGV[2] key prefix
-- then 2 per lease: its member ('<type>|<id>|<token>'), its partner ('' unless gated)
-- Returns one code per lease: 1 extended, 0 lease lost (expired and taken over, or settled).
-- A gated job's slot in its partner's 'inflight:<p>' (the gate's concurrency count, scored
-- by lease deadline) moves with its lease (GT: never earlier); without that, the slot would
-- end at the first deadline and the gate would admit one more delivery than the limit.
-- Calls: ZMSCORE, ZADD; + 1 ZADD per partner of the extended gated leases.
local deadline, prefix = ARGV[1], ARGV[2]
local members, partners = {}, {}
for i = 3, #ARGV, 2 do
  members[#members + 1] = ARGV[i]
  partners[#members] = ARGV[i + 1]
end
local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
local codes, zadd, slots = {}, {}, {}
for i, m in ipairs(members) do
  if scores[i] then
    codes[i] = 1
    zadd[#zadd + 1] = '-' .. deadline
    zadd[#zadd + 1] = m
    local p = partners[i]
    if p ~= '' then
      local slot = slots[p] or {}
      slot[#slot + 1] = deadline
      slot[#slot + 1] = string.match(m, '^[^|]*|([^|]*)|')
      slots[p] = slot
    end
  else
    codes[i] = 0
  end
end
if #zadd > 0 then redis.call('ZADD', KEYS[1], 'XX', 'LT', unpack(zadd)) end
for p, slot in pairs(slots) do
  redis.call('ZADD', prefix .. 'inflight:' .. p, 'GT', unpack(slot))
end
return codes
