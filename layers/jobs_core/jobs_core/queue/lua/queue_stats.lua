-- queue_stats: depth per type, dead-letter size, the oldest ready job and the paused
-- types, in one call.
-- KEYS[1] timeline   KEYS[2] dead
-- ARGV[1] now (ms)   ARGV[2] scan cap (entries read at most)
-- Returns {dead, entries read (cap + 1: there were more), oldest ready due time (ms) of
--          the unpaused types or -1, partners whose webhook endpoint is disabled,
--          type_1, ready_1, scheduled_1, running_1, oldest_ready_1 (ms or -1),
--          paused_since_1 (ms or -1), type_2, ...}
-- A paused type is a '~pause|<type>' member scored by minus the time it was paused; a
-- disabled partner a '~disabled|<partner>' member; '~active|' is the processor marker.
-- Counting reads the timeline (O(n) up to the cap); it runs once a minute, not per job.
-- Calls: ZRANGE (one entry past the cap tells a truncated count), ZCARD of the dead.
local now, cap = tonumber(ARGV[1]), tonumber(ARGV[2])
local entries = redis.call('ZRANGE', KEYS[1], 0, cap, 'WITHSCORES')
local read = #entries / 2
if read > cap then entries[#entries] = nil; entries[#entries] = nil end
local counts, order = {}, {}
local disabled = 0
local function slot(jtype)
  local c = counts[jtype]
  if not c then
    c = {0, 0, 0, -1, -1}
    counts[jtype] = c
    order[#order + 1] = jtype
  end
  return c
end
for i = 1, #entries, 2 do
  local m, score = entries[i], tonumber(entries[i + 1])
  local bar = string.find(m, '|', 1, true)
  local jtype = string.sub(m, 1, bar - 1)
  if jtype == '~pause' then
    slot(string.sub(m, bar + 1))[5] = -score
  elseif jtype == '~disabled' then
    disabled = disabled + 1
  elseif jtype ~= '~active' and jtype ~= '!fence' then
    local c = slot(jtype)
    if string.find(m, '|', bar + 1, true) then
      c[3] = c[3] + 1
    elseif score <= now then
      c[1] = c[1] + 1
      if c[4] < 0 then c[4] = math.ceil(score) end -- whole ms (keys.py)
    else
      c[2] = c[2] + 1
    end
  end
end
local oldest = -1
for _, jtype in ipairs(order) do
  local c = counts[jtype]
  if c[5] < 0 and c[4] >= 0 and (oldest < 0 or c[4] < oldest) then oldest = c[4] end
end
local out = {redis.call('ZCARD', KEYS[2]), read, oldest, disabled}
for _, jtype in ipairs(order) do
  local c = counts[jtype]
  out[#out + 1] = jtype
  for k = 1, 5 do out[#out + 1] = c[k] end
end
return out
