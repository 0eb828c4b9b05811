-- enable_partner: an operator re-enables a partner's endpoint; its held webhooks are due now.
-- KEYS[1] timeline ('~disabled|<partner>' marks a disabled partner: see keys.py)
-- ARGV[1] key prefix   ARGV[2] partner   ARGV[3] now (ms)
-- Returns {was_disabled (0|1), jobs made due}. The circuit starts closed; no attempt is counted.
local prefix, p, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
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
return {was, moved}
