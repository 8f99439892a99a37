package redis

import goredis "github.com/redis/go-redis/v9"

// The Lua scripts. Each one runs atomically on the server (nothing else runs
// in between) but Redis has no rollback: a script that fails half-way keeps
// what it wrote. So every script first validates everything (against the
// data and an in-script overlay of what its own earlier operations will
// have changed) and only then writes, with commands that cannot fail on
// well-formed keys.
//
// Every key of a store shares the hash tag of its prefix ("{oct}:..."), so
// one slot holds the whole store and the scripts work on Redis Cluster;
// KEYS[1] (a key of that slot) routes the call, the other key names are built
// from ARGV[1], the prefix.

// luaCommon holds helpers shared by the scripts.
const luaCommon = `
local P = ARGV[1]
local ZERO = "00000000000000000000"
local function nsenc(t)
  local b = {}
  for k = 1, #t do b[k] = #t[k] .. ":" .. t[k] .. "," end
  return table.concat(b)
end
local function nsdec(s)
  local t = {}
  if not s then return t end
  local pos = 1
  while pos <= #s do
    local c = string.find(s, ":", pos, true)
    local n = tonumber(string.sub(s, pos, c - 1))
    t[#t + 1] = string.sub(s, c + 1, c + n)
    pos = c + n + 2
  end
  return t
end
`

// applyScript applies one Change (or CreateFile) given as a list of
// operations in ARGV, in this order of validation and of writing.
//
//	ARGV[1] prefix, ARGV[2] now (padded ns), ARGV[3..4] the chain head the
//	caller computed its events from (seq, hash), ARGV[5] the UTC day of now
//	(day counters "c:day:<day>", field "<tenant>|<kind>|<state>", count
//	creations and transitions), then operations:
//	C tenant sha idem id                      CreateFile: idempotency, id must be new
//	P key id expect initok state sx mustnew seqix  nU u.. nI i.. nF f..   record upsert
//	X key id legal from to setu               transition (compare-and-set)
//	J id kind subject key run attempts err    enqueue (unique by kind, subject, key)
//	D id token                                done
//	Y id token at err                         retry
//	E seq subject hash encoded                event (already chained by the caller)
//
// Replies: {"OK"}, {"EXISTS", id} (CreateFile found the file), {"RETRY"}
// (the head or a record's existence is not what the caller read: another
// node wrote in between; nothing was written) or {"ERR", code, op} with code
// ILLEGAL, CONFLICT, NOTFOUND, DUP, LOST and op the 1-based operation index
// (nothing was written).
var applyScript = goredis.NewScript(luaCommon + `
local now = ARGV[2]
local expSeq, expHash = ARGV[3], ARGV[4]
local DAY = ARGV[5]
local i = 6
local KINDS = {["r:file:"] = "file", ["r:lot:"] = "lot", ["r:inv:"] = "invoice", ["r:an:"] = "anomaly"}
local function countDay(key, tenant, state)
  local kind = KINDS[string.match(string.sub(key, #P + 1), "^(r:%a+:)") or ""]
  if kind then redis.call("HINCRBY", P .. "c:day:" .. DAY, (tenant or "") .. "|" .. kind .. "|" .. state, 1) end
end
local function nx() local v = ARGV[i]; i = i + 1; return v end
local function plist()
  local n = tonumber(nx())
  local t = {}
  for k = 1, 2 * n do t[k] = nx() end
  return t
end

local ops = {}
local hasEvents = false
while i <= #ARGV do
  local o = {t = nx()}
  if o.t == "C" then
    o.tenant, o.sha, o.idem, o.id = nx(), nx(), nx(), nx()
  elseif o.t == "P" then
    o.key = P .. nx(); o.id = nx(); o.expect = nx(); o.initok = nx(); o.state = nx(); o.sx = nx()
    o.mustnew = nx(); o.seqix = nx(); o.ux = plist(); o.ix = plist(); o.f = plist()
  elseif o.t == "X" then
    o.key = P .. nx(); o.id = nx(); o.legal = nx(); o.from = nx(); o.to = nx(); o.setu = nx()
  elseif o.t == "J" then
    o.id = nx(); o.kind = nx(); o.subject = nx(); o.jkey = nx(); o.run = nx(); o.attempts = nx(); o.err = nx()
  elseif o.t == "D" then
    o.id = nx(); o.token = nx()
  elseif o.t == "Y" then
    o.id = nx(); o.token = nx(); o.at = nx(); o.err = nx()
  elseif o.t == "E" then
    o.seq = nx(); o.subject = nx(); o.hash = nx(); o.enc = nx(); hasEvents = true
  else
    return redis.error_reply("oct: unknown operation " .. tostring(o.t))
  end
  ops[#ops + 1] = o
end

-- 1. Validate.
if hasEvents then
  local h = redis.call("HMGET", P .. "log:head", "seq", "hash")
  if (h[1] or "0") ~= expSeq or (h[2] or "0000000000000000000000000000000000000000000000000000000000000000") ~= expHash then
    return {"RETRY"}
  end
end
local exists, states, uov, uxov, jkov, jov = {}, {}, {}, {}, {}, {}
local function ex(key)
  local v = exists[key]
  if v == nil then v = redis.call("EXISTS", key) == 1; exists[key] = v end
  return v
end
local function uget(h, f)
  local k = h .. "\0" .. f
  local v = uov[k]
  if v == nil then v = redis.call("HGET", P .. h, f); uov[k] = v end
  return v
end
for n, o in ipairs(ops) do
  if o.t == "C" then
    local id = redis.call("HGET", P .. "u:fsha", o.tenant .. "\0" .. o.sha)
    if id then return {"EXISTS", id} end
    if o.idem ~= "" then
      id = redis.call("HGET", P .. "u:fidem", o.tenant .. "\0" .. o.idem)
      if id then return {"EXISTS", id} end
    end
  elseif o.t == "P" then
    local e = ex(o.key)
    if o.mustnew == "1" and e then return {"ERR", "DUP", n} end
    if o.expect ~= "-" and o.expect ~= (e and "1" or "0") then return {"RETRY"} end
    if not e and o.initok == "0" then return {"ERR", "ILLEGAL", n} end
    local new = {}
    for k = 1, #o.ux, 2 do new[o.ux[k] .. "\0" .. o.ux[k + 1]] = true end
    if e then
      local old = uxov[o.key]
      if old == nil then old = nsdec(redis.call("HGET", o.key, "_ux")) end
      for k = 1, #old, 2 do
        if not new[old[k] .. "\0" .. old[k + 1]] and uget(old[k], old[k + 1]) == o.id then
          uov[old[k] .. "\0" .. old[k + 1]] = false
        end
      end
    end
    for k = 1, #o.ux, 2 do
      local cur = uget(o.ux[k], o.ux[k + 1])
      if cur and cur ~= o.id then return {"ERR", "DUP", n} end
      uov[o.ux[k] .. "\0" .. o.ux[k + 1]] = o.id
    end
    uxov[o.key] = o.ux
    exists[o.key] = true
    if not e and o.initok ~= "-" then states[o.key] = o.state end
  elseif o.t == "X" then
    if o.legal ~= "1" then return {"ERR", "ILLEGAL", n} end
    local cur = states[o.key]
    if cur == nil then cur = redis.call("HGET", o.key, "_s") end
    if not cur then return {"ERR", "NOTFOUND", n} end
    if cur ~= o.from then return {"ERR", "CONFLICT", n, cur} end
    states[o.key] = o.to
  elseif o.t == "J" then
    local kk = o.kind .. "\0" .. o.subject .. "\0" .. o.jkey
    local cur = jkov[kk]
    if cur == nil then cur = redis.call("HGET", P .. "u:jobkey", kk) end
    if cur then
      o.skip = true
    else
      if jov[o.id] ~= nil or redis.call("EXISTS", P .. "r:job:" .. o.id) == 1 then return {"ERR", "DUP", n} end
      jkov[kk] = o.id
      jov[o.id] = "new"
      o.kk = kk
    end
  elseif o.t == "D" or o.t == "Y" then
    if jov[o.id] ~= nil then return {"ERR", "LOST", n} end
    local j = redis.call("HMGET", P .. "r:job:" .. o.id, "token", "until")
    if o.token == "" or not j[1] or j[1] ~= o.token or not j[2] or j[2] <= now then
      return {"ERR", "LOST", n}
    end
    jov[o.id] = "gone"
  end
end

-- 2. Write.
local last
for _, o in ipairs(ops) do
  if o.t == "P" then
    local e = redis.call("EXISTS", o.key) == 1
    local f, ix = o.f, o.ix
    if o.seqix ~= "" then
      local seq
      if e then seq = redis.call("HGET", o.key, "seq") end
      if not seq then seq = tostring(redis.call("INCR", P .. "c:ret")) end
      ix[#ix + 1] = o.seqix
      ix[#ix + 1] = string.format("%020d", tonumber(seq)) .. "|" .. o.id
      f[#f + 1] = "seq"; f[#f + 1] = seq
    end
    local newix = {}
    for k = 1, #ix, 2 do newix[ix[k] .. "\0" .. ix[k + 1]] = true end
    local newux = {}
    for k = 1, #o.ux, 2 do newux[o.ux[k] .. "\0" .. o.ux[k + 1]] = true end
    if e then
      local old = nsdec(redis.call("HGET", o.key, "_ix"))
      for k = 1, #old, 2 do
        if not newix[old[k] .. "\0" .. old[k + 1]] then redis.call("ZREM", P .. old[k], old[k + 1]) end
      end
      old = nsdec(redis.call("HGET", o.key, "_ux"))
      for k = 1, #old, 2 do
        if not newux[old[k] .. "\0" .. old[k + 1]] and redis.call("HGET", P .. old[k], old[k + 1]) == o.id then
          redis.call("HDEL", P .. old[k], old[k + 1])
        end
      end
    end
    for k = 1, #ix, 2 do redis.call("ZADD", P .. ix[k], 0, ix[k + 1]) end
    for k = 1, #o.ux, 2 do redis.call("HSET", P .. o.ux[k], o.ux[k + 1], o.id) end
    f[#f + 1] = "_ix"; f[#f + 1] = nsenc(ix)
    f[#f + 1] = "_ux"; f[#f + 1] = nsenc(o.ux)
    if not e and o.initok ~= "-" then
      local tenant = ""
      for k = 1, #f, 2 do if f[k] == "tenant" then tenant = f[k + 1] end end
      countDay(o.key, tenant, o.state)
      f[#f + 1] = "_s"; f[#f + 1] = o.state
      if o.sx ~= "" then
        f[#f + 1] = "_sx"; f[#f + 1] = o.sx
        redis.call("ZADD", P .. o.sx .. o.state, 0, o.id)
      end
    end
    redis.call("HSET", o.key, unpack(f))
  elseif o.t == "X" then
    redis.call("HSET", o.key, "_s", o.to)
    countDay(o.key, redis.call("HGET", o.key, "tenant"), o.to)
    local sx = redis.call("HGET", o.key, "_sx")
    if sx and sx ~= "" then
      redis.call("ZREM", P .. sx .. o.from, o.id)
      redis.call("ZADD", P .. sx .. o.to, 0, o.id)
    end
    if o.setu == "1" then redis.call("HSET", o.key, "updated", now) end
  elseif o.t == "J" and not o.skip then
    local m = o.run .. "|" .. o.id
    redis.call("HSET", P .. "r:job:" .. o.id, "id", o.id, "kind", o.kind, "subject", o.subject, "key", o.jkey,
      "run", o.run, "attempts", o.attempts, "err", o.err, "owner", "", "token", "", "until", ZERO, "m", m)
    redis.call("ZADD", P .. "i:jq", 0, m)
    redis.call("ZADD", P .. "i:jqk:" .. o.kind, 0, m)
    redis.call("HSET", P .. "u:jobkey", o.kk, o.id)
    redis.call("HINCRBY", P .. "c:pending", o.kind, 1)
  elseif o.t == "D" then
    local key = P .. "r:job:" .. o.id
    local j = redis.call("HMGET", key, "kind", "m")
    redis.call("ZREM", P .. "i:jq", j[2])
    redis.call("ZREM", P .. "i:jqk:" .. j[1], j[2])
    redis.call("DEL", key)
    redis.call("HINCRBY", P .. "c:pending", j[1], -1)
  elseif o.t == "Y" then
    local key = P .. "r:job:" .. o.id
    local j = redis.call("HMGET", key, "kind", "m")
    local m = o.at .. "|" .. o.id
    redis.call("ZREM", P .. "i:jq", j[2])
    redis.call("ZREM", P .. "i:jqk:" .. j[1], j[2])
    redis.call("ZADD", P .. "i:jq", 0, m)
    redis.call("ZADD", P .. "i:jqk:" .. j[1], 0, m)
    redis.call("HINCRBY", key, "attempts", 1)
    redis.call("HSET", key, "run", o.at, "err", o.err, "owner", "", "token", "", "until", ZERO, "m", m)
  elseif o.t == "E" then
    redis.call("HSET", P .. "log:ev", o.seq, o.enc)
    redis.call("RPUSH", P .. "i:evs:" .. o.subject, o.seq)
    last = o
  end
end
if last then redis.call("HSET", P .. "log:head", "seq", last.seq, "hash", last.hash) end
return {"OK"}
`)

// leaseScript leases up to n due, unheld jobs.
//
//	ARGV[1] prefix, [2] now, [3] now+1ns (padded), [4] until, [5] owner,
//	[6] n, [7] number of kinds k, then k kinds, then n tokens.
//
// A job's queue member is "<available at>|<id>", available at being its
// run_at while free and its lease's until while leased: a job whose lease
// expired is due again without any sweeper (what XAUTOCLAIM does for a
// stream's pending entries). Reply: 8 strings per leased job (id, kind,
// subject, key, run, attempts, err, token).
var leaseScript = goredis.NewScript(luaCommon + `
local now, max, untl, owner, n = ARGV[2], "(" .. ARGV[3], ARGV[4], ARGV[5], tonumber(ARGV[6])
local nk = tonumber(ARGV[7])
local cands = {}
if nk == 0 then
  cands = redis.call("ZRANGEBYLEX", P .. "i:jq", "-", max, "LIMIT", 0, n)
else
  for k = 1, nk do
    local r = redis.call("ZRANGEBYLEX", P .. "i:jqk:" .. ARGV[7 + k], "-", max, "LIMIT", 0, n)
    for _, m in ipairs(r) do cands[#cands + 1] = m end
  end
  table.sort(cands)
end
local out = {}
local used = 0
for _, m in ipairs(cands) do
  if used >= n then break end
  local id = string.sub(m, 22)
  local key = P .. "r:job:" .. id
  local j = redis.call("HMGET", key, "kind", "subject", "key", "run", "attempts", "err", "m")
  if j[1] and j[7] == m then
    used = used + 1
    local token = ARGV[7 + nk + used]
    local nm = untl .. "|" .. id
    redis.call("ZREM", P .. "i:jq", m)
    redis.call("ZREM", P .. "i:jqk:" .. j[1], m)
    redis.call("ZADD", P .. "i:jq", 0, nm)
    redis.call("ZADD", P .. "i:jqk:" .. j[1], 0, nm)
    redis.call("HSET", key, "owner", owner, "token", token, "until", untl, "m", nm)
    for _, v in ipairs({id, j[1], j[2], j[3], j[4], j[5], j[6], token}) do out[#out + 1] = v end
  end
end
return out
`)

// extendScript pushes a held lease's expiry.
//
//	ARGV[1] prefix, [2] id, [3] token, [4] now, [5] new until.
//
// Reply: "OK" or "LOST".
var extendScript = goredis.NewScript(luaCommon + `
local id, token, now, untl = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local key = P .. "r:job:" .. id
local j = redis.call("HMGET", key, "token", "until", "kind", "m")
if token == "" or not j[1] or j[1] ~= token or not j[2] or j[2] <= now then return "LOST" end
local nm = untl .. "|" .. id
redis.call("ZREM", P .. "i:jq", j[4])
redis.call("ZREM", P .. "i:jqk:" .. j[3], j[4])
redis.call("ZADD", P .. "i:jq", 0, nm)
redis.call("ZADD", P .. "i:jqk:" .. j[3], 0, nm)
redis.call("HSET", key, "until", untl, "m", nm)
return "OK"
`)
