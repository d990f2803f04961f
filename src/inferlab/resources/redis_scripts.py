"""The Lua scripts of the Redis allocator: one per operation, each atomic on the Redis server.

One pool is six keys (``KEYS[1..6]``)::

    state   hash   cs ck: effective capacity; rs rk oc: raw capacity and overcommit (reported);
                   us uk: Σ held (in flight); ms mk: Σ max(held, guarantee) (committed);
                   default: the default share (JSON)
    shares  hash   tenant -> JSON [guarantee seq, guarantee kv, limit seq, limit kv (-1: none), may borrow 0/1]
    held    hash   s:<tenant>, k:<tenant>: held sequences and KV tokens; n:<tenant>: grants held
    grants  hash   request id -> JSON {t: tenant, s, k, bs, bk: borrowed, tok: token}
    expiry  zset   request id -> lease expiry, ms on the Redis clock (TIME)
    counts  hash   admitted:<tenant>, expired:<tenant>, <refusal reason>:<tenant> -> count

Every script first frees the grants whose lease has expired (at most ``PRUNE_BATCH`` a call),
exactly as a release would, so the aggregates never count a dead gateway's grants for longer
than one TTL past the next call. The rule is the one of ``rule.py``, line for line.
"""

from __future__ import annotations

PRUNE_BATCH = 1000

_COMMON = """
local S, T, H, G, E, N = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

local function share_of(tenant)
  local raw = redis.call('HGET', T, tenant)
  if not raw then raw = redis.call('HGET', S, 'default') end
  return cjson.decode(raw)
end

local function held_of(tenant)
  local v = redis.call('HMGET', H, 's:' .. tenant, 'k:' .. tenant)
  return tonumber(v[1] or '0'), tonumber(v[2] or '0')
end

local function incr(key, field, by)
  if by ~= 0 then redis.call('HINCRBY', key, field, by) end
end

-- change a tenant's held amount by (ds, dk) and its grant count by dn, keeping the aggregates
local function move(tenant, ds, dk, dn)
  local hs, hk = held_of(tenant)
  local sh = share_of(tenant)
  local ns, nk = hs + ds, hk + dk
  incr(S, 'ms', math.max(ns, sh[1]) - math.max(hs, sh[1]))
  incr(S, 'mk', math.max(nk, sh[2]) - math.max(hk, sh[2]))
  incr(S, 'us', ds)
  incr(S, 'uk', dk)
  local count = tonumber(redis.call('HGET', H, 'n:' .. tenant) or '0') + dn
  if count <= 0 then
    redis.call('HDEL', H, 's:' .. tenant, 'k:' .. tenant, 'n:' .. tenant)
  else
    redis.call('HSET', H, 's:' .. tenant, ns, 'k:' .. tenant, nk, 'n:' .. tenant, count)
  end
end

local function prune(now)
  local expired = redis.call('ZRANGEBYSCORE', E, '-inf', now, 'LIMIT', 0, PRUNE_BATCH)
  for i = 1, #expired do
    local raw = redis.call('HGET', G, expired[i])
    if raw then
      local g = cjson.decode(raw)
      move(g.t, -g.s, -g.k, -1)
      redis.call('HDEL', G, expired[i])
      redis.call('HINCRBY', N, 'expired:' .. g.t, 1)
    end
  end
  if #expired > 0 then redis.call('ZREM', E, unpack(expired)) end
  return #expired
end
""".replace("PRUNE_BATCH", str(PRUNE_BATCH))

# ARGV: tenant, request id, sequences, kv tokens, token, ttl ms, channel, pool
ADMIT = _COMMON + """
if redis.call('HEXISTS', S, 'cs') == 0 then return {'unknown_pool'} end
local now = now_ms()
if prune(now) > 0 then redis.call('PUBLISH', ARGV[7], ARGV[8]) end
local existing = redis.call('HGET', G, ARGV[2])
if existing then
  local g = cjson.decode(existing)
  return {'held', g.t, g.s, g.k, g.bs, g.bk, g.tok}
end
local tenant, s, k = ARGV[1], tonumber(ARGV[3]), tonumber(ARGV[4])
local sh = share_of(tenant)
local hs, hk = held_of(tenant)
local v = redis.call('HMGET', S, 'cs', 'ck', 'us', 'uk', 'ms', 'mk')
local cs, ck = tonumber(v[1]), tonumber(v[2])
local us, uk = tonumber(v[3] or '0'), tonumber(v[4] or '0')
local ms, mk = tonumber(v[5] or '0'), tonumber(v[6] or '0')
local function refuse(reason)
  redis.call('HINCRBY', N, reason .. ':' .. tenant, 1)
  return {reason, hs, hk, cs, ck, us, uk, ms, mk, cjson.encode(sh)}
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
if (es > 0 and es > cs - ms) or (ek > 0 and ek > ck - mk) then return refuse('pool_full') end
if us + s > cs or uk + k > ck then return refuse('overbooked') end
move(tenant, s, k, 1)
redis.call('HSET', G, ARGV[2], cjson.encode({t = tenant, s = s, k = k, bs = es, bk = ek, tok = ARGV[5]}))
redis.call('ZADD', E, now + tonumber(ARGV[6]), ARGV[2])
redis.call('HINCRBY', N, 'admitted:' .. tenant, 1)
return {'admitted', tenant, s, k, es, ek, ARGV[5]}
"""

# ARGV: request id, token, channel, pool
RELEASE = _COMMON + """
if prune(now_ms()) > 0 then redis.call('PUBLISH', ARGV[3], ARGV[4]) end
local raw = redis.call('HGET', G, ARGV[1])
if not raw then return 0 end
local g = cjson.decode(raw)
if g.tok ~= ARGV[2] then return 0 end
move(g.t, -g.s, -g.k, -1)
redis.call('HDEL', G, ARGV[1])
redis.call('ZREM', E, ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
"""

# ARGV: ttl ms, channel, pool, then (request id, token) pairs
RENEW = _COMMON + """
local now = now_ms()
if prune(now) > 0 then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
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
if redis.call('HEXISTS', S, 'cs') == 0 then return {} end
if prune(now_ms()) > 0 then redis.call('PUBLISH', ARGV[1], ARGV[2]) end
return {redis.call('HGETALL', S), redis.call('HGETALL', T), redis.call('HGETALL', H), redis.call('HGETALL', N)}
"""

# ARGV: raw seq, raw kv, overcommit, effective seq, effective kv, default share JSON, channel, pool,
#       then (tenant, share JSON) pairs
CONFIGURE = _COMMON + """
if redis.call('HEXISTS', S, 'cs') == 1 then prune(now_ms()) end
redis.call('DEL', T)
for i = 9, #ARGV, 2 do redis.call('HSET', T, ARGV[i], ARGV[i + 1]) end
redis.call('HSET', S, 'rs', ARGV[1], 'rk', ARGV[2], 'oc', ARGV[3], 'cs', ARGV[4], 'ck', ARGV[5], 'default', ARGV[6])
local held_s, held_k, tenants = {}, {}, {}
local flat = redis.call('HGETALL', H)
for i = 1, #flat, 2 do
  local kind, tenant = string.sub(flat[i], 1, 1), string.sub(flat[i], 3)
  if kind == 's' then held_s[tenant] = tonumber(flat[i + 1]); tenants[tenant] = true end
  if kind == 'k' then held_k[tenant] = tonumber(flat[i + 1]); tenants[tenant] = true end
end
for i = 9, #ARGV, 2 do tenants[ARGV[i]] = true end
local us, uk, ms, mk = 0, 0, 0, 0
for tenant in pairs(tenants) do
  local sh = share_of(tenant)
  local hs, hk = held_s[tenant] or 0, held_k[tenant] or 0
  us, uk = us + hs, uk + hk
  ms, mk = ms + math.max(hs, sh[1]), mk + math.max(hk, sh[2])
end
redis.call('HSET', S, 'us', us, 'uk', uk, 'ms', ms, 'mk', mk)
redis.call('PUBLISH', ARGV[7], ARGV[8])
return 1
"""
