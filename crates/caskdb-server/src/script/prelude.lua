-- The sandbox scripts run in, as Redis 7.0 shapes it: run once when the VM is made, with the
-- bridge table (Rust functions, private to this file) as its argument. Scripts never see this
-- file's locals. Frames of this file are named '@caskdb' and skipped when an error is located.
-- `mode` is 'eval' (EVAL's VM) or 'functions' (FUNCTION's: no `redis` global; while a
-- library loads, `redis` holds only register_function, log and the version).
local bridge, mode = ...
local real = {
  rawset = rawset, rawget = rawget, next = next, pairs = pairs, ipairs = ipairs,
  setmetatable = setmetatable, getmetatable = getmetatable, pcall = pcall, xpcall = xpcall,
  error = error, type = type, tostring = tostring, tonumber = tonumber, select = select,
  unpack = unpack, loadstring = loadstring, load = load,
}
local concat = table.concat

local READONLY = 'Attempt to modify a readonly table'
-- Tables scripts may not change, and for each read-only view the table behind it.
local protected = real.setmetatable({}, {__mode = 'k'})
local backing = real.setmetatable({}, {__mode = 'k'})

local function refuse() real.error(READONLY, 2) end

-- A read-only view of `t` (library tables: `string.x = 1` fails, as in Redis).
local function view(t)
  local v = {}
  real.setmetatable(v, {__index = t, __newindex = refuse, __metatable = false})
  protected[v] = true
  backing[v] = t
  return v
end

-- An error as the server reports it: a table with its text, and where it comes from (the
-- first frame that is neither C nor this file: bridge.locate).
local function handler(err)
  if real.type(err) == 'userdata' then
    local text, whole = bridge.errinfo(err)
    if whole then err = {err = text} else err = {err = 'ERR ' .. text} end
  elseif real.type(err) ~= 'table' then
    err = {err = 'ERR ' .. real.tostring(err)}
  end
  local source, line = bridge.locate()
  if source then
    err.source = source
    err.line = line
  end
  return err
end

-- Runs f() for the server (a library's code): true and its result, or false and the error
-- table.
bridge.run = function(f)
  return real.xpcall(f, handler)
end

-- Scripts and functions are called with it straight from the server (vm.rs), likewise.
bridge.handler = handler

-- Redis replaces pcall: an error table caught by it comes back as its text.
-- (Errors the server's functions raise arrive as userdata: they come back as their text.)
local function wrapped_pcall(...)
  local r = {real.pcall(...)}
  if r[1] == false then
    if real.type(r[2]) == 'table' and real.type(real.rawget(r[2], 'err')) == 'string' then
      r[2] = r[2].err
    elseif real.type(r[2]) == 'userdata' then
      local text, whole = bridge.errinfo(r[2])
      if text then r[2] = text end
    end
  end
  return real.unpack(r, 1, table.maxn(r))
end

-- Builtins that would see through the read-only views or open a way out of the sandbox.
local safe = {
  pcall = wrapped_pcall,
  -- (Raised without a position, as Redis's C functions raise it.)
  rawset = function(t, k, v)
    if protected[t] then real.error(READONLY, 0) end
    return real.rawset(t, k, v)
  end,
  setmetatable = function(t, mt)
    if protected[t] then real.error(READONLY, 0) end
    return real.setmetatable(t, mt)
  end,
  rawget = function(t, k) return real.rawget(backing[t] or t, k) end,
  next = function(t, k) return real.next(backing[t] or t, k) end,
  pairs = function(t) return real.pairs(backing[t] or t) end,
  ipairs = function(t) return real.ipairs(backing[t] or t) end,
  -- Bytecode can crash the VM: only source text loads.
  loadstring = function(s, name)
    if real.type(s) == 'string' and s:byte(1) == 27 then
      return nil, 'attempt to load a binary chunk'
    end
    return real.loadstring(s, name)
  end,
}
safe.load = function(f, name)
  if real.type(f) ~= 'function' then return real.load(f, name) end
  local parts = {}
  while true do
    local p = f()
    if p == nil or p == '' then break end
    if real.type(p) ~= 'string' then return nil, 'reader function must return a string' end
    parts[#parts + 1] = p
  end
  return safe.loadstring(concat(parts), name)
end

local G = _G
for k, v in real.pairs(safe) do real.rawset(G, k, v) end
math.random, math.randomseed = bridge.random, bridge.randomseed
if mode == 'eval' then real.rawset(G, 'redis', bridge.redis) end

-- Globals redis-server 7.0.15 has (no getfenv, setfenv, newproxy, print, dofile…);
-- everything else goes.
local allowed = {
  string = true, cjson = true, bit = true, cmsgpack = true, math = true, table = true,
  struct = true, redis = true, __redis__err__handler = true,
  xpcall = true, tostring = true, setmetatable = true, next = true,
  assert = true, tonumber = true, rawequal = true, collectgarbage = true, getmetatable = true,
  rawset = true, pcall = true, coroutine = true, type = true, _G = true, select = true,
  unpack = true, gcinfo = true, pairs = true, rawget = true, loadstring = true, ipairs = true,
  _VERSION = true, load = true, error = true,
}
real.rawset(G, '__redis__err__handler', handler)
local names = {}
for k in real.pairs(G) do names[#names + 1] = k end
for _, k in real.ipairs(names) do
  if not allowed[k] then real.rawset(G, k, nil) end
end

local function missing(_, k)
  real.error("Script attempted to access nonexistent global variable '" .. real.tostring(k) .. "'", 2)
end

-- FUNCTION's VM: `redis` comes from one of two tables, the one of a running function or the
-- one of a loading library.
local runtime_api, load_api
if mode == 'functions' then
  runtime_api = {redis = view(bridge.redis)}
  local r = bridge.redis
  local load_redis = {
    register_function = bridge.register_function, log = r.log,
    LOG_DEBUG = r.LOG_DEBUG, LOG_VERBOSE = r.LOG_VERBOSE, LOG_NOTICE = r.LOG_NOTICE,
    LOG_WARNING = r.LOG_WARNING, REDIS_VERSION = r.REDIS_VERSION,
    REDIS_VERSION_NUM = r.REDIS_VERSION_NUM,
  }
  real.setmetatable(load_redis, {__index = missing, __newindex = refuse, __metatable = false})
  load_api = {redis = view(load_redis)}
end

-- Library tables become read-only views; so does the string metatable's view of them.
for _, name in real.ipairs({'string', 'math', 'table', 'coroutine', 'cjson', 'bit', 'cmsgpack', 'struct', 'redis'}) do
  local lib = real.rawget(G, name)
  if real.type(lib) == 'table' then real.rawset(G, name, view(lib)) end
end
local string_mt = real.getmetatable('')
if string_mt then
  string_mt.__index = real.rawget(G, 'string')
  string_mt.__metatable = view({__index = real.rawget(G, 'string')})
end

-- The globals themselves: reading an unknown one or writing any is an error.
protected[G] = true
local index = missing
if mode == 'functions' then
  index = function(_, k)
    local v = real.rawget(bridge.loading and load_api or runtime_api, k)
    if v == nil then
      real.error("Script attempted to access nonexistent global variable '" .. real.tostring(k) .. "'", 2)
    end
    return v
  end
end
real.setmetatable(G, {__index = index, __newindex = refuse, __metatable = false})
protected[bridge] = true
