-- extend_leases: move the deadline of held leases later (never earlier: a late copy of an
-- older extend cannot shorten a lease; leases are scored -deadline, hence LT).
-- KEYS[1] timeline
-- ARGV[1] new deadline (ms), then the lease members ('<type>|<id>|<token>')
-- Returns one code per lease: 1 extended, 0 lease lost (expired and taken over, or settled).
local members = {}
for i = 2, #ARGV do members[#members + 1] = ARGV[i] end
local scores = redis.call('ZMSCORE', KEYS[1], unpack(members))
local codes, zadd = {}, {}
for i, m in ipairs(members) do
  if scores[i] then
    codes[i] = 1
    zadd[#zadd + 1] = '-' .. ARGV[1]
    zadd[#zadd + 1] = m
  else
    codes[i] = 0
  end
end
if #zadd > 0 then redis.call('ZADD', KEYS[1], 'XX', 'LT', unpack(zadd)) end
return codes
