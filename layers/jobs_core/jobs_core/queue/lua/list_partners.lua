-- list_partners: the disabled partners, and the health of the partners asked about.
-- KEYS[1] timeline ('~disabled|<partner>' members, scored -1e15: below every other score)
-- ARGV[1] key prefix   ARGV[2] now (ms)   then partner names (none: the disabled ones)
-- Returns 7 per partner: name, disabled reason ('' if enabled), disabled at (ms or ''),
-- consecutive failures, circuit open until (ms, 0 when closed), held jobs, in flight.
local prefix, now = ARGV[1], ARGV[2]
local names = {}
for i = 3, #ARGV do names[#names + 1] = ARGV[i] end
if #names == 0 then
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '-1e15')) do
    names[#names + 1] = string.sub(m, #'~disabled|' + 1)
  end
end
table.sort(names)
local out = {}
for _, p in ipairs(names) do
  local f = redis.call('HMGET', prefix .. 'partner:' .. p, 'disabled', 'disabled_at', 'fails',
    'open_until')
  out[#out + 1] = p
  out[#out + 1] = f[1] or ''
  out[#out + 1] = f[2] or ''
  out[#out + 1] = f[3] or '0'
  out[#out + 1] = f[4] or '0'
  out[#out + 1] = redis.call('ZCARD', prefix .. 'held:' .. p)
  out[#out + 1] = redis.call('ZCOUNT', prefix .. 'inflight:' .. p, now, '+inf')
end
return out
