-- audited_request: for operator scripts that a timeout can make the client send twice. Not
-- a script of its own: prepended to pause_type and enable_partner (scripts.py). Each
-- request carries a token, written into its audit entry (KEYS[2]); a copy whose token is
-- among the newest 50 entries was applied already, and answers what that entry says.
-- Calls: 1 LRANGE.
local function audited_entry(audit, request)
  local mark = '"request":"' .. request .. '"'
  for _, entry in ipairs(redis.call('LRANGE', audit, 0, 49)) do
    if string.find(entry, mark, 1, true) then return cjson.decode(entry) end
  end
  return nil
end
