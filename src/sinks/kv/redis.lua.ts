/**
 * The Redis backend's batch script: every write of a batch in one EVALSHA, in order, atomically.
 * Per object (base key H = `<prefix>:<type>:<bucket>:<key>`; keys hold no U+0000, so the
 * suffixes below cannot collide with another object):
 *   H             hash: map field path → register string | counter integer | flag '1'/'0';
 *                 for a plain value, field '' → its JSON
 *   H\0t          hash: path → datatype; '' → 'map' | 'value'; \0ts, \0id; \0seq (bumped by
 *                 every applied write: the apply order of ids, and the version for compare-and-set)
 *   H\0s<path>    set: the members of the set at <path>
 *   H\0i          sorted set: the last N applied write ids (score = apply sequence)
 * Checks come before changes, so a write that does not fit changes nothing.
 * KEYS[i] is write i's base key; ARGV[1] the writes as JSON; ARGV[2] N.
 */
export const APPLY_SCRIPT = `
local items = cjson.decode(ARGV[1])
local maxIds = tonumber(ARGV[2])
local SAFE = 9007199254740991
local out = {}
-- Every applied write bumps the object's sequence (also its version for compare-and-set) and
-- joins the last maxIds applied ids.
local function remember(tk, ik, id)
  local seq = redis.call('HINCRBY', tk, '\\0seq', 1)
  redis.call('ZADD', ik, seq, id)
  redis.call('ZREMRANGEBYRANK', ik, 0, -maxIds - 1)
end
local function newer(ts, id, sts, sid)
  return ts > sts or (ts == sts and id > sid)
end
-- Redis commands take at most a few thousand arguments comfortably: big member lists in chunks.
local function chunked(cmd, key, list)
  for from = 1, #list, 1000 do
    redis.call(cmd, key, unpack(list, from, math.min(from + 999, #list)))
  end
end
for i = 1, #items do
  local it = items[i]
  local h = KEYS[i]
  local tk, ik = h .. '\\0t', h .. '\\0i'
  local r
  if it.k == 'c' then
    local meta = redis.call('HMGET', tk, '', '\\0seq')
    local ver = tonumber(meta[2] or '0')
    if meta[1] and meta[1] ~= 'value' then r = 'err:wrong-type:the key holds a map, not a plain value'
    elseif ver ~= it.ver then r = 'conflict'
    else
      redis.call('HSET', h, '', it.v)
      redis.call('HSET', tk, '', 'value', '\\0ts', it.ts, '\\0id', it.id)
      for _, id in ipairs(it.ids) do remember(tk, ik, id) end
      r = 'ok'
    end
  elseif redis.call('ZSCORE', ik, it.id) then
    r = 'dup'
  elseif it.k == 'p' then
    local meta = redis.call('HMGET', tk, '', '\\0ts', '\\0id')
    if meta[1] and meta[1] ~= 'value' then r = 'err:wrong-type:the key holds a map, not a plain value'
    elseif meta[1] and not newer(it.ts, it.id, tonumber(meta[2]), meta[3]) then
      remember(tk, ik, it.id)
      r = 'stale'
    else
      redis.call('HSET', h, '', it.v)
      redis.call('HSET', tk, '', 'value', '\\0ts', it.ts, '\\0id', it.id)
      remember(tk, ik, it.id)
      r = 'ok'
    end
  else
    -- One HMGET for the root and every path's type (each op's path and its parents), one for
    -- the counters' values; then the checks; then one HSET per hash.
    local fields, seen, counterPaths = { '' }, { [''] = true }, {}
    for _, op in ipairs(it.ops) do
      local p, from = op.p, 1
      while true do
        local dot = string.find(p, '.', from, true)
        local q = dot and string.sub(p, 1, dot - 1) or p
        if not seen[q] then seen[q] = true; fields[#fields + 1] = q end
        if not dot then break end
        from = dot + 1
      end
      if op.t == 'counter' and not seen['\\0c' .. p] then seen['\\0c' .. p] = true; counterPaths[#counterPaths + 1] = p end
    end
    local got = redis.call('HMGET', tk, unpack(fields))
    local types = {}
    for j = 2, #fields do types[fields[j]] = got[j] or false end
    local counts = {}
    if #counterPaths > 0 then
      local cur = redis.call('HMGET', h, unpack(counterPaths))
      for j, p in ipairs(counterPaths) do counts[p] = tonumber(cur[j] or '0') end
    end
    local err
    if got[1] and got[1] ~= 'map' then err = 'wrong-type:the key holds a plain value, not a map' end
    local changed = {}
    if not err then
      for _, op in ipairs(it.ops) do
        local p, from = op.p, 1
        while true do
          local dot = string.find(p, '.', from, true)
          if not dot then break end
          local q = string.sub(p, 1, dot - 1)
          local tq = types[q]
          if tq and tq ~= 'map' then err = 'wrong-type:' .. q .. ' is a ' .. tq .. ', not a map'; break end
          if not tq then types[q] = 'map'; changed[#changed + 1] = q end
          from = dot + 1
        end
        if err then break end
        local tp = types[p]
        if tp and tp ~= op.t then err = 'wrong-type:' .. p .. ' is a ' .. tp .. ', not a ' .. op.t; break end
        if not tp then types[p] = op.t; changed[#changed + 1] = p end
        if op.t == 'counter' then
          local c = counts[p] + op.v
          if c > SAFE or c < -SAFE then err = 'bad-value:counter ' .. p .. ' would leave the safe integer range'; break end
          counts[p] = c
        end
      end
    end
    if err then
      r = 'err:' .. err
    else
      local tset = { '', 'map' }
      for _, q in ipairs(changed) do tset[#tset + 1] = q; tset[#tset + 1] = types[q] end
      redis.call('HSET', tk, unpack(tset))
      local hset = {}
      for _, op in ipairs(it.ops) do
        if op.t == 'register' then hset[#hset + 1] = op.p; hset[#hset + 1] = op.v
        elseif op.t == 'flag' then hset[#hset + 1] = op.p; hset[#hset + 1] = op.a == 'enable' and '1' or '0'
        elseif op.t == 'set' and #op.v > 0 then chunked(op.a == 'add' and 'SADD' or 'SREM', h .. '\\0s' .. op.p, op.v)
        end
      end
      for _, p in ipairs(counterPaths) do hset[#hset + 1] = p; hset[#hset + 1] = string.format('%.0f', counts[p]) end
      if #hset > 0 then redis.call('HSET', h, unpack(hset)) end
      remember(tk, ik, it.id)
      r = 'ok'
    end
  end
  out[i] = r
end
return out
`;
