/**
 * The Redis backend's batch script: every write of a batch in one EVALSHA, in order, atomically.
 * Per object (base key H = `<prefix>:<type>:<bucket>:<key>`; keys hold no U+0000, so the
 * suffixes below cannot collide with another object):
 *   H             hash: map field path → register string | counter integer | flag '1'/'0';
 *                 for a plain value, field '' → its JSON
 *   H\0t          hash: path → datatype; '' → 'map' | 'value'; \0ver, \0ts, \0id, \0seq
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
local function remember(tk, ik, id)
  local seq = redis.call('HINCRBY', tk, '\\0seq', 1)
  redis.call('ZADD', ik, seq, id)
  local n = redis.call('ZCARD', ik)
  if n > maxIds then redis.call('ZREMRANGEBYRANK', ik, 0, n - maxIds - 1) end
end
local function newer(ts, id, sts, sid)
  return ts > sts or (ts == sts and id > sid)
end
for i = 1, #items do
  local it = items[i]
  local h = KEYS[i]
  local tk, ik = h .. '\\0t', h .. '\\0i'
  local r
  if it.k == 'c' then
    local meta = redis.call('HMGET', tk, '', '\\0ver')
    local ver = tonumber(meta[2] or '0')
    if meta[1] and meta[1] ~= 'value' then r = 'err:wrong-type:the key holds a map, not a plain value'
    elseif ver ~= it.ver then r = 'conflict'
    else
      redis.call('HSET', h, '', it.v)
      redis.call('HSET', tk, '', 'value', '\\0ver', ver + 1, '\\0ts', it.ts, '\\0id', it.id)
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
      redis.call('HINCRBY', tk, '\\0ver', 1)
      remember(tk, ik, it.id)
      r = 'ok'
    end
  else
    local root = redis.call('HGET', tk, '')
    local err
    if root and root ~= 'map' then err = 'wrong-type:the key holds a plain value, not a map' end
    local types, counts = {}, {}
    if not err then
      for _, op in ipairs(it.ops) do
        local p = op.p
        local from = 1
        while true do
          local dot = string.find(p, '.', from, true)
          if not dot then break end
          local q = string.sub(p, 1, dot - 1)
          local tq = types[q]
          if tq == nil then tq = redis.call('HGET', tk, q) or false end
          if tq and tq ~= 'map' then err = 'wrong-type:' .. q .. ' is a ' .. tq .. ', not a map'; break end
          types[q] = 'map'
          from = dot + 1
        end
        if err then break end
        local tp = types[p]
        if tp == nil then tp = redis.call('HGET', tk, p) or false end
        if tp and tp ~= op.t then err = 'wrong-type:' .. p .. ' is a ' .. tp .. ', not a ' .. op.t; break end
        types[p] = op.t
        if op.t == 'counter' then
          local c = counts[p]
          if c == nil then c = tonumber(redis.call('HGET', h, p) or '0') end
          c = c + op.v
          if c > SAFE or c < -SAFE then err = 'bad-value:counter ' .. p .. ' would leave the safe integer range'; break end
          counts[p] = c
        end
      end
    end
    if err then
      r = 'err:' .. err
    else
      redis.call('HSET', tk, '', 'map')
      for q, t in pairs(types) do redis.call('HSET', tk, q, t) end
      for _, op in ipairs(it.ops) do
        if op.t == 'register' then redis.call('HSET', h, op.p, op.v)
        elseif op.t == 'flag' then redis.call('HSET', h, op.p, op.a == 'enable' and '1' or '0')
        elseif op.t == 'set' then
          local sk = h .. '\\0s' .. op.p
          for _, m in ipairs(op.v) do
            if op.a == 'add' then redis.call('SADD', sk, m) else redis.call('SREM', sk, m) end
          end
        end
      end
      for p, c in pairs(counts) do redis.call('HSET', h, p, string.format('%.0f', c)) end
      redis.call('HINCRBY', tk, '\\0ver', 1)
      remember(tk, ik, it.id)
      r = 'ok'
    end
  end
  out[i] = r
end
return out
`;
