-- enable_partner: an operator re-enables a partner's endpoint; its held webhooks are due now.
-- KEYS[1] timeline ('~disabled|<partner>' marks a disabled partner: see keys.py)
-- KEYS[2] audit
-- ARGV[1] key prefix   ARGV[2] partner   ARGV[3] now (ms)   ARGV[4] actor
-- ARGV[5] request token (the same in every copy of one request)
-- Returns {was_disabled (0|1), jobs made due}. The circuit starts closed; no attempt is counted.
-- The action goes to the audit (its count: the held jobs made due). Safe to resend: a copy
-- of a request already in the audit does nothing and answers what the first copy did (a
-- late copy cannot re-enable a partner disabled again since).
local prefix, p, now, request = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[5]
local applied = audited_entry(KEYS[2], request) -- audited_request.lua, prepended
if applied then return {1, applied.count} end
local key, held = prefix .. 'partner:' .. p, prefix .. 'held:' .. p
local was = redis.call('HEXISTS', key, 'disabled')
redis.call('HDEL', key, 'disabled', 'disabled_at', 'fails', 'opens', 'open_until', 'wake')
redis.call('ZREM', KEYS[1], '~disabled|' .. p)
local moved = 0
while true do
  local batch = redis.call('ZRANGE', held, 0, 499, 'WITHSCORES')
  if #batch == 0 then break end
  local members, zadd = {}, {}
  for i = 1, #batch, 2 do
    members[#members + 1] = batch[i]
    zadd[#zadd + 1] = math.max(tonumber(batch[i + 1]), now)
    zadd[#zadd + 1] = batch[i]
  end
  redis.call('ZREM', held, unpack(members))
  redis.call('ZADD', KEYS[1], unpack(zadd))
  moved = moved + #members
end
redis.call('LPUSH', KEYS[2], cjson.encode({at = now, actor = ARGV[4], action = 'enable_partner',
  count = moved, partner = p, request = request}))
redis.call('LTRIM', KEYS[2], 0, 999)
return {was, moved}
