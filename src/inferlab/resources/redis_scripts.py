"""The Lua scripts of the Redis allocator: one per operation, each atomic on the Redis server.

One pool is six keys (``KEYS[1..6]``)::

    state   hash   cs ck: effective capacity; rs rk oc: raw capacity and overcommit (reported);
                   us uk: Σ held (in flight); ms mk: Σ max(held, guarantee) (committed);
                   default: the default share (JSON)
    shares  hash   tenant -> JSON [guarantee seq, guarantee kv, limit seq, limit kv (-1: none), may borrow 0/1]
    held    hash   tenant -> "<sequences> <KV tokens> <grants>" it holds (absent: nothing)
    grants  hash   request id -> JSON {t: tenant, s, k, bs, bk: borrowed, tok: token}
    expiry  zset   request id -> lease expiry, ms on the Redis clock (TIME)
    counts  hash   admitted:<tenant>, expired:<tenant>, <refusal reason>:<tenant> -> count

Every script first frees the grants whose lease has expired (at most ``PRUNE_BATCH`` a call),
exactly as a release would, so the aggregates never count a dead gateway's grants for longer
than one TTL past the next call. The rule is the one of ``rule.py``, line for line. The state
hash is read once per call and written once (a dozen Redis calls per admission in all).
"""

from __future__ import annotations

PRUNE_BATCH = 1000

_COMMON = """
local S, T, H, G, E, N = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- the pool's state hash, or nil for a pool never configured
local function load_state()
  local v = redis.call('HMGET', S, 'cs', 'ck', 'us', 'uk', 'ms', 'mk', 'default')
  if not v[1] then return nil end
  return {cs = tonumber(v[1]), ck = tonumber(v[2]), us = tonumber(v[3] or '0'), uk = tonumber(v[4] or '0'),
          ms = tonumber(v[5] or '0'), mk = tonumber(v[6] or '0'), default = v[7]}
end

local function save_state(st)
  redis.call('HSET', S, 'us', st.us, 'uk', st.uk, 'ms', st.ms, 'mk', st.mk)
end

local function share_of(st, tenant)
  return cjson.decode(redis.call('HGET', T, tenant) or st.default)
end

local function held_of(tenant)
  local v = redis.call('HGET', H, tenant)
  if not v then return 0, 0, 0 end
  local s, k, n = string.match(v, '^(%d+) (%d+) (%d+)$')
  return tonumber(s), tonumber(k), tonumber(n)
end

-- change a tenant's held amount by (ds, dk) and its grants by dn; the aggregates move in st
local function move(st, tenant, sh, hs, hk, hn, ds, dk, dn)
  local ns, nk, nn = hs + ds, hk + dk, hn + dn
  st.ms = st.ms + math.max(ns, sh[1]) - math.max(hs, sh[1])
  st.mk = st.mk + math.max(nk, sh[2]) - math.max(hk, sh[2])
  st.us = st.us + ds
  st.uk = st.uk + dk
  if nn <= 0 then
    redis.call('HDEL', H, tenant)
  else
    redis.call('HSET', H, tenant, string.format('%d %d %d', ns, nk, nn))
  end
end

local function drop(st, g)
  local hs, hk, hn = held_of(g.t)
  move(st, g.t, share_of(st, g.t), hs, hk, hn, -g.s, -g.k, -1)
end

-- free the grants whose lease expired; true when any was (the caller saves st and publishes)
local function prune(st, now)
  local expired = redis.call('ZRANGEBYSCORE', E, '-inf', now, 'LIMIT', 0, PRUNE_BATCH)
  for i = 1, #expired do
    local raw = redis.call('HGET', G, expired[i])
    if raw then
      local g = cjson.decode(raw)
      drop(st, g)
      redis.call('HDEL', G, expired[i])
      redis.call('HINCRBY', N, 'expired:' .. g.t, 1)
    end
  end
  if #expired > 0 then redis.call('ZREM', E, unpack(expired)) end
  return #expired > 0
end
""".replace("PRUNE_BATCH", str(PRUNE_BATCH))

# ARGV: tenant, request id, sequences, kv tokens, token, ttl ms, channel, pool
ADMIT = _COMMON + """
local st = load_state()
if not st then return {'unknown_pool'} end
local now = now_ms()
if prune(st, now) then
  save_state(st)
  redis.call('PUBLISH', ARGV[7], ARGV[8])
end
local existing = redis.call('HGET', G, ARGV[2])
if existing then
  local g = cjson.decode(existing)
  return {'held', g.t, g.s, g.k, g.bs, g.bk, g.tok}
end
local tenant, s, k = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local sh = share_of(st, tenant)
local hs, hk, hn = held_of(tenant)
local cs, ck = st.cs, st.ck
local function refuse(reason)
  redis.call('HINCRBY', N, reason .. ':' .. tenant, 1)
  return {reason, hs, hk, cs, ck, st.us, st.uk, st.ms, st.mk, cjson.encode(sh)}
end
local gs, gk, ls, lk, borrow = sh[1], sh[2], sh[3], sh[4], sh[5] == 1
local top_s, top_k = cs, ck
if ls >= 0 then top_s, top_k = math.min(top_s, ls), math.min(top_k, lk) end
if not borrow then top_s, top_k = math.min(top_s, gs), math.min(top_k, gk) end
if s > top_s or k > top_k then return refuse('request_too_large') end
if ls >= 0 and (hs + s > ls or hk + k > lk) then return refuse('tenant_limit') end
if not borrow and (hs + s > gs or hk + k > gk) then return refuse('no_borrowing') end
local es = math.max(hs + s, gs) - math.max(hs, gs)
local ek = math.max(hk + k, gk) - math.max(hk, gk)
if (es > 0 and es > cs - st.ms) or (ek > 0 and ek > ck - st.mk) then return refuse('pool_full') end
if st.us + s > cs or st.uk + k > ck then return refuse('overbooked') end
move(st, tenant, sh, hs, hk, hn, s, k, 1)
save_state(st)
redis.call('HSET', G, ARGV[2], cjson.encode({t = tenant, s = s, k = k, bs = es, bk = ek, tok = ARGV[5]}))
redis.call('ZADD', E, now + tonumber(ARGV[6]), ARGV[2])
redis.call('HINCRBY', N, 'admitted:' .. tenant, 1)
return {'admitted', tenant, s, k, es, ek, ARGV[5]}
"""

# ARGV: request id, token, channel, pool
RELEASE = _COMMON + """
local st = load_state()
if not st then return 0 end
local pruned = prune(st, now_ms())
local raw = redis.call('HGET', G, ARGV[1])
local g = raw and cjson.decode(raw)  -- Redis nil is false in Lua
local released = g and g.tok == ARGV[2]
if released then
  drop(st, g)
  redis.call('HDEL', G, ARGV[1])
  redis.call('ZREM', E, ARGV[1])
end
if pruned or released then
  save_state(st)
  redis.call('PUBLISH', ARGV[3], ARGV[4])
end
return released and 1 or 0
"""

# ARGV: ttl ms, channel, pool, then (request id, token) pairs
RENEW = _COMMON + """
local st = load_state()
if not st then return 0 end
local now = now_ms()
if prune(st, now) then
  save_state(st)
  redis.call('PUBLISH', ARGV[2], ARGV[3])
end
local expires = now + tonumber(ARGV[1])
local alive = 0
for i = 4, #ARGV, 2 do
  local raw = redis.call('HGET', G, ARGV[i])
  if raw and cjson.decode(raw).tok == ARGV[i + 1] then
    local score = tonumber(redis.call('ZSCORE', E, ARGV[i]) or '0')
    if score < expires then redis.call('ZADD', E, expires, ARGV[i]) end
    alive = alive + 1
  end
end
return alive
"""

# ARGV: channel, pool
USAGE = _COMMON + """
local st = load_state()
if not st then return {} end
if prune(st, now_ms()) then
  save_state(st)
  redis.call('PUBLISH', ARGV[1], ARGV[2])
end
return {redis.call('HGETALL', S), redis.call('HGETALL', T), redis.call('HGETALL', H), redis.call('HGETALL', N)}
"""

# ARGV: raw seq, raw kv, overcommit, effective seq, effective kv, default share JSON, channel, pool,
#       then (tenant, share JSON) pairs
CONFIGURE = _COMMON + """
local st = load_state()
if st and prune(st, now_ms()) then save_state(st) end
redis.call('DEL', T)
for i = 9, #ARGV, 2 do redis.call('HSET', T, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', S, 'rs', ARGV[1], 'rk', ARGV[2], 'oc', ARGV[3], 'cs', ARGV[4], 'ck', ARGV[5], 'default', ARGV[6])
st = load_state()
st.us, st.uk, st.ms, st.mk = 0, 0, 0, 0
local seen = {}
local flat = redis.call('HGETALL', H)
for i = 1, #flat, 2 do
  local tenant = flat[i]
  local hs, hk = string.match(flat[i + 1], '^(%d+) (%d+) ')
  hs, hk = tonumber(hs), tonumber(hk)
  local sh = share_of(st, tenant)
  st.us, st.uk = st.us + hs, st.uk + hk
  st.ms, st.mk = st.ms + math.max(hs, sh[1]), st.mk + math.max(hk, sh[2])
  seen[tenant] = true
end
for i = 9, #ARGV, 2 do
  if not seen[ARGV[i]] then
    local sh = cjson.decode(ARGV[i + 1])
    st.ms, st.mk = st.ms + sh[1], st.mk + sh[2]
  end
end
save_state(st)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
"""
